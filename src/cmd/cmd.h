/* Subcommands of the `hudong` program. Each returns a process exit code. */
#ifndef HD_CMD_CMD_H
#define HD_CMD_CMD_H

int hd_cmd_serve(int argc, char **argv);
int hd_cmd_token(int argc, char **argv);
int hd_cmd_netem(int argc, char **argv);
int hd_cmd_pub(int argc, char **argv);
int hd_cmd_sub(int argc, char **argv);
int hd_cmd_bench(int argc, char **argv);

#endif
