/* The agent's command-line front end to the sync engine: `agent sync`, `agent drift`. */
#ifndef AGENT_CLI_H
#define AGENT_CLI_H

/* argv[1] is "sync" or "drift". Returns the exit code (0, 1 failure, 2 usage). */
int agent_cli_main(int argc, char **argv);

#endif
