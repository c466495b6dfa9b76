/* The `hudong` program: dispatches to subcommands (DESIGN §1). */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: hudong <command> [options]\n"
          "commands:\n"
          "  serve   run a node (HTTP API + WHIP/WHEP + web app, UDP media)\n"
          "  token   mint an access token (JWT)\n"
          "  netem   network emulator: a UDP relay with delay, loss, jitter, rate limits\n"
          "  pub     join a room and publish audio/video (files, tone, test pattern)\n"
          "  sub     join a room, receive and decode every track to WAV/Y4M/IVF, print stats\n"
          "  bench   load generator: 'hudong bench load' (publishers + subscribers over real WebRTC)\n"
          "  drain   move a cluster node's participants to other nodes, then stop it\n"
          "  cluster 'hudong cluster links': a node's measured links to the other nodes and its routes\n"
          "  egress  record a room's tracks to files (started by the node: POST /admin/egress)\n"
          "run 'hudong <command> --help' for the options of a command; 'hudong --version' for the version\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "serve")) return hd_cmd_serve(argc - 1, argv + 1);
  if (!strcmp(argv[1], "token")) return hd_cmd_token(argc - 1, argv + 1);
  if (!strcmp(argv[1], "netem")) return hd_cmd_netem(argc - 1, argv + 1);
  if (!strcmp(argv[1], "pub")) return hd_cmd_pub(argc - 1, argv + 1);
  if (!strcmp(argv[1], "sub")) return hd_cmd_sub(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return hd_cmd_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "drain")) return hd_cmd_drain(argc - 1, argv + 1);
  if (!strcmp(argv[1], "cluster")) return hd_cmd_cluster(argc - 1, argv + 1);
  if (!strcmp(argv[1], "egress")) return hd_cmd_egress(argc - 1, argv + 1);
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version")) {
    printf("hudong %s\n", HD_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "hudong: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
