#!/usr/bin/env bash
# The git servers the source-controller's cases fetch from (e2e/fixtures/git-servers) are
# real and enforce what they claim, proven with the plain git CLI: git daemon (git://),
# smart HTTP(S) through git http-backend with basic, token and bearer credentials, and
# sshd with key authentication and known_hosts; the fixture repository has the branches
# and tags (annotated ones peeled) with the same SHAs on every run; `push` moves a branch;
# `down` leaves no process and no open port behind.
. "$(dirname "$0")/../lib/testlib.sh"
gs=$E2E_ROOT/fixtures/git-servers
srv=$E2E_WORK/git-servers
on_exit "'$gs' down --dir '$srv'"

# The servers must not hold the caller's stdout/stderr: reading up's output to its end
# returns (a harness waiting on the pipe would hang otherwise).
if timeout 120 bash -c 'set -o pipefail; "$1" up --dir "$2" 2>&1 | cat >"$3"' _ \
	"$gs" "$srv" "$E2E_WORK/up.out"; then
	ok "servers up; none holds the caller's stdout/stderr"
else
	not_ok "servers up: $(cat "$E2E_WORK/up.out")"
	exit 1
fi
eval "$(grep '^export ' "$E2E_WORK/up.out")"
expect_eq "the env file has the same exports" "$(grep '^export ' "$E2E_WORK/up.out")" "$(cat "$srv/env")"
check "up again while running is a no-op with the same exports" \
	diff "$srv/env" <("$gs" up --dir "$srv" 2>/dev/null)

repo_out=$("$gs" repo --dir "$srv" ignition) || { not_ok "repo ignition"; exit 1; }
eval "$repo_out"
# Pinned: the fixture's content, identity and dates are fixed, so are its SHAs.
expect_eq "repository SHAs are the pinned ones" \
	"b364223352fc182bf06d6473e74248e4a1735d74 0362c2b26c3738d5e1d7369ba2a200c0aba8ec7a c502bd593e92bdfd8de34daf890c37bf81c5bc60 7735a600a10b5a8a1497fa25122d17a1e659e49e 3044a7b61785fc677828c24a2afa71b7ae7c33b8 069d5436d698a65efe73efebba75d115721f8cf4 c2c6cef5229cd09d1e38292f2561feba1122939f" \
	"$COMMIT_MAIN $COMMIT_RELEASE $COMMIT_V1_0_0 $COMMIT_V1_1_0 $COMMIT_V2_0_0_RC_1 $COMMIT_V2_0_0 $TAG_V2_0_0"
expect_eq "branches and tags are six different commits" 6 \
	"$(printf '%s\n' "$COMMIT_MAIN" "$COMMIT_RELEASE" "$COMMIT_V1_0_0" "$COMMIT_V1_1_0" \
		"$COMMIT_V2_0_0_RC_1" "$COMMIT_V2_0_0" | sort -u | wc -l)"
expect_eq "repo again gives the same SHAs" "$repo_out" "$("$gs" repo --dir "$srv" ignition)"

# A git client that sees no user or system configuration, no credential helper or agent,
# never prompts, and trusts only the CA a command names.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 \
	GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false
unset GIT_SSL_CAINFO GIT_SSH GIT_SSH_COMMAND SSH_AUTH_SOCK
host_http=${GIT_HTTP_URL#http://}
host_https=${GIT_HTTPS_URL#https://}
# ssh KEY KNOWN_HOSTS [options]: the ssh command git should use.
sshcmd() {
	echo "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none" \
		"-o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null" \
		"-o UserKnownHostsFile=$2 -i $1 ${*:3}"
}

n=0
# run CMD...: runs it with output in $E2E_WORK/run.N.{out,err}; $out/$err name them.
run() {
	n=$((n + 1))
	out=$E2E_WORK/run.$n.out
	err=$E2E_WORK/run.$n.err
	"$@" >"$out" 2>"$err"
}
# clones DESCRIPTION [git options] -- URL: cloning URL gives main with the Ignition layout.
clones() {
	local what=$1 opts=()
	shift
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	dest=$E2E_WORK/clone.$((n + 1))
	if ! run git "${opts[@]}" clone -q "$2" "$dest"; then
		not_ok "$what: $(tail -n 3 "$err" | tr '\n' ' ')"
		return
	fi
	expect_eq "$what" "$COMMIT_MAIN yes" "$(git -C "$dest" rev-parse HEAD) $(
		[ -f "$dest/services/site/config/resources/core/ignition/system-properties/config.json" ] &&
			echo yes)"
}
# refused DESCRIPTION PATTERN CMD...: the command fails and its stderr has PATTERN.
refused() {
	local what=$1 pattern=$2
	shift 2
	if run "$@"; then
		not_ok "$what: it succeeded"
	elif grep -q -- "$pattern" "$err"; then
		ok "$what"
	else
		not_ok "$what: '$pattern' not in: $(tail -n 3 "$err" | tr '\n' ' ')"
	fi
}

# --- git:// ----------------------------------------------------------------------------
clones "clone over git://" -- "$GIT_DAEMON_URL/ignition.git"
daemon_clone=$dest

# --- smart HTTP ------------------------------------------------------------------------
clones "clone over HTTP with basic auth" -- \
	"http://$GIT_HTTP_USER:$GIT_HTTP_PASSWORD@$host_http/ignition.git"
http_clone=$dest
clones "clone over HTTP with the token as password (any user name)" -- \
	"http://x-access-token:$GIT_HTTP_TOKEN@$host_http/ignition.git"
clones "clone over HTTP with a Bearer token" \
	-c http.extraHeader="Authorization: Bearer $GIT_HTTP_TOKEN" -- "$GIT_HTTP_URL/ignition.git"
clones "clone over HTTPS with the fixture CA" -c http.sslCAInfo="$GIT_HTTP_CA" -- \
	"https://$GIT_HTTP_USER:$GIT_HTTP_PASSWORD@$host_https/ignition.git"

refused "wrong password is refused" "Authentication failed" \
	git clone -q "http://$GIT_HTTP_USER:wrong-$GIT_HTTP_PASSWORD@$host_http/ignition.git" "$E2E_WORK/no1"
refused "the password is not accepted for another user" "Authentication failed" \
	git clone -q "http://someone:$GIT_HTTP_PASSWORD@$host_http/ignition.git" "$E2E_WORK/no2"
refused "no credentials are refused" "could not read Username" \
	git clone -q "$GIT_HTTP_URL/ignition.git" "$E2E_WORK/no3"
refused "wrong Bearer token is refused" "could not read Username" \
	git -c http.extraHeader="Authorization: Bearer wrong-$GIT_HTTP_TOKEN" clone -q \
	"$GIT_HTTP_URL/ignition.git" "$E2E_WORK/no4"
refused "HTTPS without the fixture CA is refused" "certificate" \
	git clone -q "https://$GIT_HTTP_USER:$GIT_HTTP_PASSWORD@$host_https/ignition.git" "$E2E_WORK/no5"
status=$(curl -s -o /dev/null -D "$E2E_WORK/401.headers" -w '%{http_code}' \
	-u "$GIT_HTTP_USER:wrong" "$GIT_HTTP_URL/ignition.git/info/refs?service=git-upload-pack")
expect_eq "wrong password gets 401" 401 "$status"
expect_contains "401 asks for Basic" 'WWW-Authenticate: Basic realm="git"' "$(tr -d '\r' <"$E2E_WORK/401.headers")"
bearer() { # TOKEN: the HTTP status of an info/refs request with that Bearer token
	curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
		"$GIT_HTTP_URL/ignition.git/info/refs?service=git-upload-pack"
}
expect_eq "Bearer: right token 200, wrong token 401, password as token 401" "200 401 401" \
	"$(bearer "$GIT_HTTP_TOKEN") $(bearer "wrong-$GIT_HTTP_TOKEN") $(bearer "$GIT_HTTP_PASSWORD")"

# --- ssh -------------------------------------------------------------------------------
clones "clone over ssh with the key and known_hosts (StrictHostKeyChecking=yes)" \
	-c core.sshCommand="$(sshcmd "$GIT_SSH_KEY" "$GIT_KNOWN_HOSTS")" -- "$GIT_SSH_URL/ignition.git"
ssh_clone=$dest
clones "clone over ssh with the RSA key (PEM) and the RSA host key" \
	-c core.sshCommand="$(sshcmd "$GIT_SSH_KEY_RSA" "$GIT_KNOWN_HOSTS" -o HostKeyAlgorithms=rsa-sha2-512,rsa-sha2-256)" \
	-- "$GIT_SSH_URL/ignition.git"
refused "wrong key is refused" "Permission denied (publickey)" \
	git -c core.sshCommand="$(sshcmd "$GIT_SSH_WRONG_KEY" "$GIT_KNOWN_HOSTS")" clone -q \
	"$GIT_SSH_URL/ignition.git" "$E2E_WORK/no6"
refused "wrong known_hosts is refused" "Host key verification failed" \
	git -c core.sshCommand="$(sshcmd "$GIT_SSH_KEY" "$GIT_WRONG_KNOWN_HOSTS")" clone -q \
	"$GIT_SSH_URL/ignition.git" "$E2E_WORK/no7"
: >"$E2E_WORK/empty_known_hosts"
refused "unknown host key is refused" "Host key verification failed" \
	git -c core.sshCommand="$(sshcmd "$GIT_SSH_KEY" "$E2E_WORK/empty_known_hosts")" clone -q \
	"$GIT_SSH_URL/ignition.git" "$E2E_WORK/no8"

# --- ls-remote: branches and tags, annotated tags peeled --------------------------------
ssh_git=(git -c core.sshCommand="$(sshcmd "$GIT_SSH_KEY" "$GIT_KNOWN_HOSTS")")
http_url="http://$GIT_HTTP_USER:$GIT_HTTP_PASSWORD@$host_http"
expected=$(printf '%s\t%s\n' \
	"$COMMIT_MAIN" HEAD \
	"$COMMIT_MAIN" refs/heads/main \
	"$COMMIT_RELEASE" refs/heads/release \
	"$COMMIT_V1_0_0" refs/tags/v1.0.0 \
	"$TAG_V1_1_0" refs/tags/v1.1.0 \
	"$COMMIT_V1_1_0" 'refs/tags/v1.1.0^{}' \
	"$TAG_V2_0_0" refs/tags/v2.0.0 \
	"$COMMIT_V2_0_0" 'refs/tags/v2.0.0^{}' \
	"$TAG_V2_0_0_RC_1" refs/tags/v2.0.0-rc.1 \
	"$COMMIT_V2_0_0_RC_1" 'refs/tags/v2.0.0-rc.1^{}')
expect_eq "ls-remote over git://" "$expected" "$(git ls-remote "$GIT_DAEMON_URL/ignition.git" 2>&1)"
expect_eq "ls-remote over git:// with protocol v0" "$expected" \
	"$(git -c protocol.version=0 ls-remote "$GIT_DAEMON_URL/ignition.git" 2>&1)"
expect_eq "ls-remote over HTTP" "$expected" "$(git ls-remote "$http_url/ignition.git" 2>&1)"
expect_eq "ls-remote over ssh" "$expected" "$("${ssh_git[@]}" ls-remote "$GIT_SSH_URL/ignition.git" 2>&1)"

# --- push moves a branch -----------------------------------------------------------------
new=$("$gs" push --dir "$srv" ignition)
head_of() { # URL-PREFIX [git options...]: what ls-remote reports for main
	local url=$1
	shift
	"$@" ls-remote "$url/ignition.git" refs/heads/main 2>&1 | cut -f1
}
expect_eq "after push, git:// reports the new main" "$new" "$(head_of "$GIT_DAEMON_URL" git)"
expect_eq "after push, HTTP reports the new main" "$new" "$(head_of "$http_url" git)"
expect_eq "after push, ssh reports the new main" "$new" "$(head_of "$GIT_SSH_URL" "${ssh_git[@]}")"
check "the pushed commit's parent is the old main" test "$(git -C "$daemon_clone" fetch -q origin 2>&1 &&
	git -C "$daemon_clone" rev-parse "$new^")" = "$COMMIT_MAIN"
check "the pushed commit changes one file" test "$(git -C "$daemon_clone" diff --name-only "$COMMIT_MAIN" "$new")" = \
	services/site/projects/Site/com.inductiveautomation.perspective/views/Main/view.json
rel=$("$gs" push --dir "$srv" ignition release)
expect_eq "push to release moves release only" "$new $rel" "$(git ls-remote "$GIT_DAEMON_URL/ignition.git" \
	refs/heads/main refs/heads/release | cut -f1 | tr '\n' ' ' | sed 's/ $//')"
check "the ssh clone fast-forwards to the pushed commit" \
	bash -c '"${@:3}" -C "$1" pull -q --ff-only && test "$(git -C "$1" rev-parse HEAD)" = "$2"' _ \
	"$ssh_clone" "$new" "${ssh_git[@]}"

# --- HTTP request bodies: gzip (a large fetch request) and chunked (a large push) ------
"$gs" repo --dir "$srv" many >/dev/null
for b in $(seq -w 1 24); do "$gs" push --dir "$srv" many "b$b" >/dev/null; done
clones_many=$E2E_WORK/many
run git clone -q "$http_url/many.git" "$clones_many"
check "clone of 25 branches over HTTP" test "$(git -C "$clones_many" branch -r | wc -l)" -ge 25
check "its fetch request came gzip-encoded and was answered" \
	grep -q 'POST /many.git/git-upload-pack 200 .*encoding=gzip' "$srv/logs/http.log"
head -c 400000 /dev/urandom >"$clones_many/blob.bin"
git -C "$clones_many" add blob.bin
git -C "$clones_many" -c user.name=t -c user.email=t@t.invalid commit -q -m blob
run git -C "$clones_many" -c http.postBuffer=65536 push -q origin HEAD:refs/heads/upload
expect_eq "push of 400 kB over HTTP" "$(git -C "$clones_many" rev-parse HEAD)" \
	"$(git ls-remote "$GIT_DAEMON_URL/many.git" refs/heads/upload | cut -f1)"
check "its pack came chunked and was answered" \
	grep -q 'POST /many.git/git-receive-pack 200 .*transfer=chunked' "$srv/logs/http.log"

# --- down ------------------------------------------------------------------------------
pids=$(cat "$srv"/pids/*)
ports=$(cat "$srv/ports")
"$gs" down --dir "$srv"
check "down removed the directory" test ! -e "$srv"
alive=""
for p in $pids; do # a zombie (not yet reaped by init) has stopped
	st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && alive="$alive $p"
done
expect_eq "down stopped every server" "" "$alive"
expect_eq "no process mentions the directory" "" "$(pgrep -af -- "$srv")"
open=""
for p in $ports; do
	/usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
		"$p" 2>/dev/null && open="$open $p"
done
expect_eq "no server port accepts connections" "" "$open"
