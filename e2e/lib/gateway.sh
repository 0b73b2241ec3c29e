# Gateway pods without a kubelet, shared by e2e cases and `make run` (sourced).
#
# stk_gateway_pod_yaml NAME CR PROFILE: prints the manifest stk_gateway_pod creates.
# stk_gateway_pod NS NAME CR PROFILE: creates a gateway pod annotated for injection (the
#   injector adds the agent sidecar as the API server stores it) and sets it Running, as
#   a kubelet would.
# stk_agent_start NS POD DIR BINDIR LOG [HEALTH_PORT]: starts the agent as a host process
#   with the env of the pod's stoker-agent container: downward-API values filled in,
#   volumes remapped under DIR (repo/, data/, secrets/), the API key from Secret values
#   already written to DIR/secrets/apiKey by the caller, a projected-style token for
#   audience stoker-source. Sets STK_AGENT_PID.
# Needs: STOKER_KUBECTL, KUBECONFIG.

stk_gateway_pod_yaml() { # NAME CR PROFILE: the manifest of such a pod
	local name=$1 cr=$2 profile=$3
	cat <<Y
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels: {app.kubernetes.io/name: $name}
  annotations: {stoker.io/inject: "true", stoker.io/cr-name: $cr, stoker.io/sync-profile: $profile}
spec:
  containers:
  - name: gateway
    image: inductiveautomation/ignition
    volumeMounts: [{name: data, mountPath: /usr/local/bin/ignition/data}]
  volumes: [{name: data, emptyDir: {}}]
Y
}

stk_gateway_pod() {
	local ns=$1 name=$2 cr=$3 profile=$4
	stk_gateway_pod_yaml "$name" "$cr" "$profile" | "$STOKER_KUBECTL" create -n "$ns" -f - >/dev/null
	"$STOKER_KUBECTL" patch pod "$name" -n "$ns" --subresource=status --type=merge \
		-p '{"status":{"phase":"Running"}}' >/dev/null
}

stk_agent_start() {
	local ns=$1 pod=$2 dir=$3 bindir=$4 log=$5 hp=${6:-0}
	mkdir -p "$dir/repo" "$dir/data" "$dir/secrets"
	"$STOKER_KUBECTL" create token default -n "$ns" --audience stoker-source --duration 24h \
		>"$dir/secrets/token"
	"$STOKER_KUBECTL" get pod "$pod" -n "$ns" -o json | /usr/bin/python3 -c '
import json, sys
pod = json.load(sys.stdin)
c = [c for c in pod["spec"].get("initContainers", []) if c["name"] == "stoker-agent"]
if not c:
    sys.exit("pod %s has no stoker-agent sidecar (was the injector running?)" % pod["metadata"]["name"])
d = sys.argv[1]
remap = {"REPO_PATH": d + "/repo", "DATA_PATH": d + "/data", "API_KEY_FILE": d + "/secrets/apiKey",
         "SOURCE_TOKEN_FILE": d + "/secrets/token"}
fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"]}
for e in c[0]["env"]:
    v = remap.get(e["name"], e["value"]) if "value" in e else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
    print("%s=%s" % (e["name"], v))
' "$dir" >"$dir/env" || return 1
	local vars
	mapfile -t vars <"$dir/env"
	env -i PATH="$PATH" KUBECONFIG="$KUBECONFIG" GATEWAY_HOST=127.0.0.1 "${vars[@]}" \
		"$bindir/agent" --health-probe-bind-address "127.0.0.1:$hp" \
		--metrics-bind-address "127.0.0.1:0" --log-level debug >>"$log" 2>&1 &
	STK_AGENT_PID=$!
}
