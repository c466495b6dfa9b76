/* The Lua scripts that keep RTM's shared log and state in Redis (used by
 * rtm_redis.c; the key layout is at the top of rtm_redis.c and in
 * docs/overlay.md "RTM across nodes"). Each runs atomically in Redis
 * (EVALSHA), which is what makes a channel's order, compare-and-set and
 * locks hold across nodes. */
#ifndef HD_IO_RTM_REDIS_SCRIPTS_H
#define HD_IO_RTM_REDIS_SCRIPTS_H

/* Every log entry is also appended to one of this many fan-in streams
 * (hudong:rtm:fan:<0..15>, shard = byte sum of the cid mod 16) that every
 * node reads; the scripts compute the shard themselves. */
#define HD_RTM_FAN_SHARDS 16

/* A node's inbox (hudong:rtm:in:<node>) expires this long after the last
 * message put in it: a dead node's inbox, recreated by a message sent to it
 * after the purge deleted it (a peer outcome, a moved session), does not stay
 * in Redis forever. A live node reads its inbox within seconds, so an hour
 * loses only what a reader that has been away that long would have read
 * (docs/overlay.md, key table). */
#define HD_RTM_INBOX_TTL_MS "3600000"

typedef enum {
  RS_OPEN,
  RS_PUB,
  RS_PRES,
  RS_WHO,
  RS_ATTR,
  RS_ATTRS,
  RS_LOCK,
  RS_LOCKS,
  RS_LOCK_EXPIRE,
  RS_PURGE,
  RS_UHERE,
  RS_PEER,
  RS_UEV,
  RS_OWN,
  RS_INBOX,
  RS_COUNT,
} hd_rtm_script_t;

/* Script texts indexed by hd_rtm_script_t (RS_COUNT entries). */
extern const char *const hd_rtm_redis_scripts[RS_COUNT];

#endif
