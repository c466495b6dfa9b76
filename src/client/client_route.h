/* Internals of the SDK's cluster routing (client_route.c; the public
 * hd_client_route is in include/hudong/client.h). */
#ifndef HD_CLIENT_CLIENT_ROUTE_H
#define HD_CLIENT_CLIENT_ROUTE_H
#include <stddef.h>

/* A node's http(s)://host:port[/prefix] URL, as /api/route and a draining
 * node's redirect name it, as the ws(s)://host:port[/prefix]/rtc URL the
 * client joins. 0, or HD_EINVAL (another scheme, no host), HD_ENOSPC. */
int cl_rtc_url_of(const char *http_url, char *out, size_t cap);

#endif
