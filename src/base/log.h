/* Minimal leveled logging to stderr. Level from HUDONG_LOG (error|warn|info|debug). */
#ifndef HD_BASE_LOG_H
#define HD_BASE_LOG_H

enum { HD_LOG_ERROR = 0, HD_LOG_WARN = 1, HD_LOG_INFO = 2, HD_LOG_DEBUG = 3 };

void hd_log_set_level(int level);
int hd_log_level(void);
void hd_log(int level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define HD_LOGE(mod, ...) hd_log(HD_LOG_ERROR, mod, __VA_ARGS__)
#define HD_LOGW(mod, ...) hd_log(HD_LOG_WARN, mod, __VA_ARGS__)
#define HD_LOGI(mod, ...) hd_log(HD_LOG_INFO, mod, __VA_ARGS__)
#define HD_LOGD(mod, ...)                                                                                    \
  do {                                                                                                       \
    if (hd_log_level() >= HD_LOG_DEBUG) hd_log(HD_LOG_DEBUG, mod, __VA_ARGS__);                              \
  } while (0)

#endif
