/* RTM's Redis scripts (rtm_redis_scripts.h). */
#include "io/rtm_redis_scripts.h"

/* Every log entry is written twice in the same script: to the channel's log
 * (positions, catch-up, moving sessions) and to one of HD_RTM_FAN_SHARDS fan-in
 * streams (shard = byte sum of the cid mod 16) that every node reads. A node
 * thus reads 16 streams whatever the number of channels: one XREAD over all
 * its channels' logs cost O(channels) per call, and with one entry per call
 * at low rates that was O(channels) per message (55 µs more per publish with
 * 180 channels at fan-out 10). The price: every node reads every channel's
 * entries (it skips those of channels it does not follow). */
#define FAN_MAXLEN "100000"
#define LUA_LOGX                                                                                             \
  "local function logx(key, cid, maxlen, j, c)\n"                                                            \
  "  local id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'j', j, 'c', c)\n"                       \
  "  local s = 0\n"                                                                                          \
  "  for i = 1, #cid do s = s + string.byte(cid, i) end\n"                                                   \
  "  redis.call('XADD', 'hudong:rtm:fan:' .. (s % 16), 'MAXLEN', '~', " FAN_MAXLEN                           \
  ", '*', 'k', cid, 'p', id, 'j', j, 'c', c)\n"                                                              \
  "  return id\n"                                                                                            \
  "end\n"

static const char LUA_OPEN[] = "local c = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                               "local l = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)\n"
                               "local id = '0-0'\n"
                               "if l[1] then id = l[1][1] end\n"
                               "return {c, id}\n";

/* KEYS seq log hist; ARGV pre post floor maxlen store keep from ts data cid
 * ids id ttl n. ids (the session's publish ids, '' = the publish has no id):
 * a hash id -> cseq of the session's last n publishes (ids .. ':o' lists
 * them oldest first), kept ttl s after the last one, like the node's own
 * per-session dedupe (docs/rtm.md "pub": its last 64). A publish whose answer
 * was lost (the node's call timed out after Redis took it) and that the
 * client sends again gets the first cseq back ({cseq, '', 1}), not a second
 * entry. */
static const char LUA_PUB[] =
    LUA_LOGX "if ARGV[11] ~= '' then\n"
             "  local old = redis.call('HGET', ARGV[11], ARGV[12])\n"
             "  if old then return {tonumber(old), '', 1} end\n"
             "end\n"
             "local c = redis.call('INCR', KEYS[1])\n"
             "local f = tonumber(ARGV[3])\n"
             "if c <= f then c = f + 1; redis.call('SET', KEYS[1], c) end\n"
             "local id = logx(KEYS[2], ARGV[10], ARGV[4], ARGV[1] .. c .. ARGV[2], c)\n"
             "if ARGV[5] == '1' then\n"
             "  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)\n"
             "  if not last[1] or tonumber(string.match(last[1][1], '^(%d+)')) < c then\n"
             "    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[6], c .. '-1', 'f', ARGV[7], "
             "'t', ARGV[8], 'd', ARGV[9])\n"
             "  end\n"
             "end\n"
             "if ARGV[11] ~= '' then\n"
             "  local o = ARGV[11] .. ':o'\n"
             "  redis.call('HSET', ARGV[11], ARGV[12], c)\n"
             "  if redis.call('RPUSH', o, ARGV[12]) > tonumber(ARGV[14]) then\n"
             "    redis.call('HDEL', ARGV[11], redis.call('LPOP', o))\n"
             "  end\n"
             "  redis.call('EXPIRE', ARGV[11], ARGV[13]); redis.call('EXPIRE', o, ARGV[13])\n"
             "end\n"
             "return {c, id}\n";

/* KEYS m mn st log nch pnodes; ARGV user node op state body maxlen cid presence_max */
static const char LUA_PRES[] =
    LUA_LOGX "local f = ARGV[2] .. '\\n' .. ARGV[1]\n"
             "local uch = 'hudong:rtm:uch:' .. string.match(ARGV[7], '^(.*)/') .. '/' .. ARGV[1]\n"
             "local op = ARGV[3]\n"
             "local ev = false\n"
             "if op == '1' then\n"
             "  if redis.call('HSETNX', KEYS[2], f, 1) == 1 then\n"
             "    redis.call('SADD', KEYS[5], ARGV[7]); redis.call('SADD', KEYS[6], ARGV[2])\n"
             "    if redis.call('HINCRBY', KEYS[1], ARGV[1], 1) == 1 then\n"
             "      ev = true; redis.call('SADD', uch, string.match(ARGV[7], '/([^/]*)$'))\n"
             "    end\n"
             "  end\n"
             "elseif op == '4' then\n"
             "  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]); ev = true\n"
             "else\n"
             "  if redis.call('HDEL', KEYS[2], f) == 1 then\n"
             "    if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then\n"
             "      redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[3], ARGV[1]); ev = true\n"
             "      redis.call('SREM', uch, string.match(ARGV[7], '/([^/]*)$'))\n"
             "    end\n"
             "  end\n"
             "end\n"
             "local cap = tonumber(ARGV[8])\n"
             "if ev and cap > 0 then\n"
             "  local n = redis.call('HLEN', KEYS[1])\n"
             "  if op == '2' or op == '3' then n = n + 1 end\n"
             "  if n > cap then ev = false end\n"
             "end\n"
             "if ev then logx(KEYS[4], ARGV[7], ARGV[6], ARGV[5], 0) end\n"
             "return ev and 1 or 0\n";

/* KEYS m st; -> {user, state or false, ...} */
static const char LUA_WHO[] = "local u = redis.call('HKEYS', KEYS[1])\n"
                              "table.sort(u)\n"
                              "local out = {}\n"
                              "for _, x in ipairs(u) do\n"
                              "  out[#out + 1] = x\n"
                              "  out[#out + 1] = redis.call('HGET', KEYS[2], x) or ''\n"
                              "  out[#out + 1] = redis.call('HEXISTS', KEYS[2], x)\n"
                              "end\n"
                              "return out\n";

/* KEYS vals revs log; ARGV key value del expect maxkeys pre post maxlen haslog cid */
static const char LUA_ATTR[] = LUA_LOGX
    "local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1\n"
    "local cur = 0\n"
    "if exists then cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') end\n"
    "local expect = tonumber(ARGV[4])\n"
    "if expect >= 0 and expect ~= cur then return {-1, cur} end\n"
    "if ARGV[3] == '1' then\n"
    "  if not exists then return {-2, 0} end\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "else\n"
    "  if not exists and tonumber(ARGV[5]) > 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then\n"
    "    return {-3, 0}\n"
    "  end\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "end\n"
    "local rev = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)\n"
    "if ARGV[9] == '1' then\n"
    "  logx(KEYS[3], ARGV[10], ARGV[8], ARGV[6] .. rev .. ARGV[7], 0)\n"
    "end\n"
    "return {0, rev}\n";

/* KEYS vals revs; -> {key, value, rev, ...} ascending key */
static const char LUA_ATTRS[] = "local k = redis.call('HKEYS', KEYS[1])\n"
                                "table.sort(k)\n"
                                "local out = {}\n"
                                "for _, x in ipairs(k) do\n"
                                "  out[#out + 1] = x\n"
                                "  out[#out + 1] = redis.call('HGET', KEYS[1], x)\n"
                                "  out[#out + 1] = tonumber(redis.call('HGET', KEYS[2], x) or '0')\n"
                                "end\n"
                                "return out\n";

/* KEYS lock lockexp log; ARGV op name user ttl admin cid maxlen ch
 * -> {code, prev owner, exp}: 0 ok, -1 held, -2 none, -4 someone else's */
static const char LUA_LOCK[] =
    LUA_LOGX "local t = redis.call('TIME')\n"
             "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
             "local cur = redis.call('HGET', KEYS[1], ARGV[2])\n"
             "local owner = false\n"
             "if cur then local d = cjson.decode(cur); if d.e > now then owner = d.o end end\n"
             "local m = ARGV[6] .. '\\n' .. ARGV[2]\n"
             "local function ev(e, o)\n"
             "  logx(KEYS[3], ARGV[6], ARGV[7],\n"
             "    cjson.encode({type = 'lock', ch = ARGV[8], name = ARGV[2], ev = e, owner = o}), 0)\n"
             "end\n"
             "if ARGV[1] == 'r' then\n"
             "  if not owner then return {-2, '', 0} end\n"
             "  if owner ~= ARGV[3] and ARGV[5] ~= '1' then return {-4, owner, 0} end\n"
             "  redis.call('HDEL', KEYS[1], ARGV[2]); redis.call('ZREM', KEYS[2], m)\n"
             "  ev('released', ARGV[3])\n"
             "  return {0, owner, 0}\n"
             "end\n"
             "if owner and owner ~= ARGV[3] and ARGV[1] ~= 's' then return {-1, owner, 0} end\n"
             "local e = now + tonumber(ARGV[4])\n"
             "redis.call('HSET', KEYS[1], ARGV[2], cjson.encode({o = ARGV[3], e = e}))\n"
             "redis.call('ZADD', KEYS[2], e, m)\n"
             "if owner ~= ARGV[3] then\n"
             "  if ARGV[1] == 's' and owner then ev('stolen', ARGV[3]) else ev('acquired', ARGV[3]) end\n"
             "end\n"
             "return {0, owner or '', e}\n";

/* KEYS lock; -> {name, owner, exp, ...} of live locks */
static const char LUA_LOCKS[] = "local t = redis.call('TIME')\n"
                                "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
                                "local all = redis.call('HGETALL', KEYS[1])\n"
                                "local out = {}\n"
                                "for i = 1, #all, 2 do\n"
                                "  local d = cjson.decode(all[i + 1])\n"
                                "  if d.e > now then\n"
                                "    out[#out + 1] = all[i]; out[#out + 1] = d.o; out[#out + 1] = d.e\n"
                                "  end\n"
                                "end\n"
                                "return out\n";

/* KEYS lockexp; ARGV maxlen. Expires due locks once, cluster-wide. */
static const char LUA_LOCK_EXPIRE[] =
    LUA_LOGX "local t = redis.call('TIME')\n"
             "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
             "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)\n"
             "for _, m in ipairs(due) do\n"
             "  redis.call('ZREM', KEYS[1], m)\n"
             "  local cid, name = string.match(m, '^(.*)\\n(.*)$')\n"
             "  if cid then\n"
             "    local h = 'hudong:rtm:lock:' .. cid\n"
             "    local cur = redis.call('HGET', h, name)\n"
             "    if cur then\n"
             "      local d = cjson.decode(cur)\n"
             "      if d.e <= now then\n"
             "        redis.call('HDEL', h, name)\n"
             "        logx('hudong:rtm:log:' .. cid, cid, ARGV[1],\n"
             "          cjson.encode({type = 'lock', ch = string.match(cid, '/([^/]*)$'), name = name, ev = "
             "'expired',\n"
             "                        owner = d.o}), 0)\n"
             "      end\n"
             "    end\n"
             "  end\n"
             "end\n"
             "return #due\n";

/* ARGV node maxlen: a dead node's members time out (once). */
static const char LUA_PURGE[] = LUA_LOGX
    "local node = ARGV[1]\n"
    "local p = node .. '\\n'\n"
    "for _, cid in ipairs(redis.call('SMEMBERS', 'hudong:rtm:nch:' .. node)) do\n"
    "  local mn, m, st = 'hudong:rtm:mn:' .. cid, 'hudong:rtm:m:' .. cid, 'hudong:rtm:st:' .. cid\n"
    "  local ch = string.match(cid, '/([^/]*)$')\n"
    "  for _, f in ipairs(redis.call('HKEYS', mn)) do\n"
    "    if string.sub(f, 1, #p) == p then\n"
    "      local user = string.sub(f, #p + 1)\n"
    "      redis.call('HDEL', mn, f)\n"
    "      if redis.call('HINCRBY', m, user, -1) <= 0 then\n"
    "        redis.call('HDEL', m, user); redis.call('HDEL', st, user)\n"
    "        redis.call('SREM', 'hudong:rtm:uch:' .. string.match(cid, '^(.*)/') .. '/' .. user, ch)\n"
    "        logx('hudong:rtm:log:' .. cid, cid, ARGV[2],\n"
    "          cjson.encode({type = 'pres', ch = ch, ev = 'timeout', user = user}), 0)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', 'hudong:rtm:nch:' .. node)\n"
    "for _, au in ipairs(redis.call('SMEMBERS', 'hudong:rtm:nu:' .. node)) do\n"
    "  redis.call('SREM', 'hudong:rtm:un:' .. au, node)\n"
    "end\n"
    "redis.call('DEL', 'hudong:rtm:nu:' .. node)\n"
    "redis.call('DEL', 'hudong:rtm:in:' .. node)\n"
    "redis.call('SREM', 'hudong:rtm:pnodes', node)\n"
    "return 1\n";

/* KEYS un nu pnodes; ARGV node "<app>/<user>" here: where peer messages
 * find the user's sessions (the node joins pnodes so that its death purges
 * it here too). */
static const char LUA_UHERE[] =
    "if ARGV[3] == '1' then\n"
    "  redis.call('SADD', KEYS[1], ARGV[1]); redis.call('SADD', KEYS[2], ARGV[2])\n"
    "  redis.call('SADD', KEYS[3], ARGV[1])\n"
    "else\n"
    "  redis.call('SREM', KEYS[1], ARGV[1]); redis.call('SREM', KEYS[2], ARGV[2])\n"
    "end\n"
    "return 1\n";

/* KEYS un; ARGV node msg maxlen: the peer message into the inbox stream of
 * every other live node holding the user (a node whose registry entry is
 * gone is skipped: dead, or Redis lost its data; the purge removes it). A
 * stream, not pub/sub: a node whose reader is reconnecting reads it on from
 * its position. -> how many nodes took it. */
static const char LUA_PEER[] =
    "local n = 0\n"
    "for _, x in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if x ~= ARGV[1] and redis.call('EXISTS', 'hudong:node:' .. x) == 1 then\n"
    "    redis.call('XADD', 'hudong:rtm:in:' .. x, 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[2])\n"
    "    redis.call('PEXPIRE', 'hudong:rtm:in:' .. x, " HD_RTM_INBOX_TTL_MS ")\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

/* KEYS uch bc; ARGV node app user body maxlen: a user event to every node
 * (the broadcast stream) with the channels where the user is present. ->
 * those channels. */
static const char LUA_UEV[] =
    "local c = redis.call('SMEMBERS', KEYS[1])\n"
    "local m = cjson.encode({n = ARGV[1], a = ARGV[2], u = ARGV[3], b = ARGV[4], c = c})\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'm', 'uev\\n' .. m)\n"
    "return c\n";

/* KEYS own; ARGV node: the node owning a hooked channel's state (a board):
 * '' = this node (claimed now if nobody live held it), else the owner. */
static const char LUA_OWN[] = "local o = redis.call('GET', KEYS[1])\n"
                              "if o == ARGV[1] then return '' end\n"
                              "if o and redis.call('EXISTS', 'hudong:node:' .. o) == 1 then return o end\n"
                              "redis.call('SET', KEYS[1], ARGV[1])\n"
                              "return ''\n";

/* KEYS in; ARGV maxlen msg: a control message into one node's inbox, which
 * then expires HD_RTM_INBOX_TTL_MS after this last write (the node may be
 * dead and purged: the XADD recreates its inbox). */
static const char LUA_INBOX[] = "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])\n"
                                "redis.call('PEXPIRE', KEYS[1], " HD_RTM_INBOX_TTL_MS ")\n"
                                "return 1\n";

const char *const hd_rtm_redis_scripts[RS_COUNT] = {
    [RS_OPEN] = LUA_OPEN,   [RS_PUB] = LUA_PUB,     [RS_PRES] = LUA_PRES,
    [RS_WHO] = LUA_WHO,     [RS_ATTR] = LUA_ATTR,   [RS_ATTRS] = LUA_ATTRS,
    [RS_LOCK] = LUA_LOCK,   [RS_LOCKS] = LUA_LOCKS, [RS_LOCK_EXPIRE] = LUA_LOCK_EXPIRE,
    [RS_PURGE] = LUA_PURGE, [RS_UHERE] = LUA_UHERE, [RS_PEER] = LUA_PEER,
    [RS_UEV] = LUA_UEV,     [RS_OWN] = LUA_OWN,     [RS_INBOX] = LUA_INBOX,
};
