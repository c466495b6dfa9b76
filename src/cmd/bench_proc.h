/* What a process costs, for `hudong bench load`'s reports: the server's CPU
 * (whole and per thread) and RSS from /proc, and the generator's own CPU. */
#ifndef HD_CMD_BENCH_PROC_H
#define HD_CMD_BENCH_PROC_H

/* Per-thread CPU of the server (/proc/PID/task/TID/stat), to see how the
 * work splits between the control thread and the media workers (hd-media-i). */
#define BL_MAX_THREADS 80
typedef struct {
  int tid;
  char name[24];
  double cpu0, cpu1;
} bl_thread_t;

/* utime + stime of process pid (/proc/PID/stat), µs. 0, or -1 when unreadable. */
int bl_proc_cpu_us(int pid, double *cpu_us);
/* First call (second = 0): records each thread's CPU as cpu0 into t[0..),
 * returns how many. Second call (second = 1, n from the first): sets cpu1 of
 * the threads still there; threads born in between are not measured. */
int bl_proc_threads(int pid, bl_thread_t *t, int n, int second);
/* VmRSS of pid in kB, -1 when unreadable. */
long bl_proc_rss_kb(int pid);
/* Datagrams the kernel dropped at pid's UDP sockets since they opened (their
 * receive buffer was full: the "drops" column of /proc/net/udp and udp6, for
 * the socket inodes in /proc/PID/fd). *sockets: how many were found. 0, or
 * -1 when unreadable. Tells losses at the generator's own sockets (pid = the
 * generator) from what the server never sent. */
int bl_proc_udp_drops(int pid, unsigned long long *drops, int *sockets);
/* This process's CPU (all threads), µs. */
double bl_self_cpu_us(void);
/* The calling thread's CPU, µs. */
double bl_thread_cpu_us(void);

#endif
