/* What a process costs, read from /proc and getrusage (bench_proc.h). */
#include "cmd/bench_proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* utime + stime of a /proc/.../stat line, in µs. */
static int stat_cpu_us(const char *buf, double *cpu_us) {
  const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* fields after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)
   * stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  *cpu_us = (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
  return 0;
}

int bl_proc_cpu_us(int pid, double *cpu_us) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return stat_cpu_us(buf, cpu_us);
}

int bl_proc_threads(int pid, bl_thread_t *t, int n, int second) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return n;
  struct dirent *e;
  while ((e = readdir(d))) {
    int tid = atoi(e->d_name);
    if (tid <= 0) continue;
    char sp[96], buf[1024];
    snprintf(sp, sizeof sp, "/proc/%d/task/%d/stat", pid, tid);
    FILE *f = fopen(sp, "r");
    if (!f) continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *o = strchr(buf, '('), *c = strrchr(buf, ')');
    double us;
    if (!o || !c || c < o || stat_cpu_us(buf, &us) < 0) continue;
    int k = 0;
    while (k < n && t[k].tid != tid)
      k++;
    if (k == n) {
      if (n == BL_MAX_THREADS || second) continue; /* a thread born in the window is not measured */
      t[n].tid = tid;
      snprintf(t[n].name, sizeof t[n].name, "%.*s", (int)(c - o - 1), o + 1);
      t[n].cpu0 = us;
      t[n].cpu1 = -1;
      n++;
    } else if (second) {
      t[k].cpu1 = us;
    }
  }
  closedir(d);
  return n;
}

long bl_proc_rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
  fclose(f);
  return kb;
}

double bl_self_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 +
         (double)ru.ru_stime.tv_usec;
}

double bl_thread_cpu_us(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) return 0;
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_ul(const void *a, const void *b) {
  unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
  return x < y ? -1 : x > y;
}

/* Adds the drops of the sockets of /proc/net/<file> whose inode is in ino[0..n). */
static void udp_table_drops(const char *file, const unsigned long *ino, size_t n, unsigned long long *drops,
                            int *found) {
  FILE *f = fopen(file, "r");
  if (!f) return;
  char line[512];
  if (!fgets(line, sizeof line, f)) { /* the header */
    fclose(f);
    return;
  }
  while (fgets(line, sizeof line, f)) {
    /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops */
    unsigned long inode = 0;
    unsigned long long d = 0;
    if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %*s %*s %llu", &inode, &d) != 2) continue;
    if (bsearch(&inode, ino, n, sizeof *ino, cmp_ul)) {
      *drops += d;
      (*found)++;
    }
  }
  fclose(f);
}

int bl_proc_udp_drops(int pid, unsigned long long *drops, int *sockets) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  size_t n = 0, cap = 0;
  unsigned long *ino = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    char lp[400], target[64];
    snprintf(lp, sizeof lp, "%s/%s", path, e->d_name);
    ssize_t k = readlink(lp, target, sizeof target - 1);
    if (k <= 0) continue;
    target[k] = 0;
    unsigned long i;
    if (sscanf(target, "socket:[%lu]", &i) != 1) continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 256;
      unsigned long *g = realloc(ino, nc * sizeof *ino);
      if (!g) break;
      ino = g;
      cap = nc;
    }
    ino[n++] = i;
  }
  closedir(d);
  *drops = 0;
  *sockets = 0;
  if (!n) { /* no socket (qsort/bsearch take no NULL array, even empty) */
    free(ino);
    return 0;
  }
  qsort(ino, n, sizeof *ino, cmp_ul);
  udp_table_drops("/proc/net/udp", ino, n, drops, sockets);
  udp_table_drops("/proc/net/udp6", ino, n, drops, sockets);
  free(ino);
  return 0;
}
