/* SPDX-License-Identifier: MIT */
/* runtime/observe/metrics_http.c: the opt-in HTTP endpoint for
 * Prometheus (strata_metrics_listen), on libmicrohttpd. One internal
 * polling thread serves every connection without blocking on any of them,
 * so a client that connects and sends nothing, or sends slowly, holds only
 * its own connection until the timeout; libmicrohttpd bounds what a
 * request may hold in memory (an over-long request line or header gets
 * an error answer and the connection is closed) and refuses connections
 * past the limit. The text is made on that thread from counters read
 * atomically: a scrape takes no lock a task's walk takes, so the runtime
 * never waits for a client. The daemon is started and stopped under
 * metrics.export_mu (metrics_export.c).
 *
 * libmicrohttpd is loaded when the first endpoint starts (dlopen by its
 * soname), not linked: it brings GnuTLS and seven more libraries, which an
 * application that never serves metrics should not carry (nor their
 * thread-local storage and start-up costs). It stays loaded. */
#include "config.h"

#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#define COMP "metrics"

#ifdef HAVE_MICROHTTPD

#include <arpa/inet.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>

/* What a client may take: an 8 KiB request, 5 s of a connection, one of
 * 16 connections. */
#define REQUEST_BYTES 8192
#define CONNECTION_S 5
#define CONNECTIONS 16

static const char CONTENT_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

/* {=== libmicrohttpd, loaded at the first start ===} */

#define MHD_SONAME "libmicrohttpd.so.12"

static struct mhd_api {
  struct MHD_Daemon *(*start_daemon)(unsigned int, uint16_t,
                                     MHD_AcceptPolicyCallback, void *,
                                     MHD_AccessHandlerCallback, void *, ...);
  void (*stop_daemon)(struct MHD_Daemon *);
  const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *,
                                                 enum MHD_DaemonInfoType, ...);
  struct MHD_Response *(*create_response_from_buffer)(
      size_t, void *, enum MHD_ResponseMemoryMode);
  enum MHD_Result (*add_response_header)(struct MHD_Response *, const char *,
                                         const char *);
  enum MHD_Result (*queue_response)(struct MHD_Connection *, unsigned int,
                                    struct MHD_Response *);
  void (*destroy_response)(struct MHD_Response *);
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static bool mhd_ok;
static char mhd_error[256];

static void *need(void *lib, const char *name, bool *ok) {
  void *f = lib ? dlsym(lib, name) : NULL;
  if (!f && *ok) {
    snprintf(mhd_error, sizeof mhd_error, "%s has no %s", MHD_SONAME, name);
    *ok = false;
  }
  return f;
}

static void load_mhd(void) {
  void *lib = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(mhd_error, sizeof mhd_error, "%s", dlerror());
    return;
  }
  bool ok = true;
  /* POSIX lets a void * from dlsym become a function pointer this way. */
  *(void **)&mhd.start_daemon = need(lib, "MHD_start_daemon", &ok);
  *(void **)&mhd.stop_daemon = need(lib, "MHD_stop_daemon", &ok);
  *(void **)&mhd.get_daemon_info = need(lib, "MHD_get_daemon_info", &ok);
  *(void **)&mhd.create_response_from_buffer =
      need(lib, "MHD_create_response_from_buffer", &ok);
  *(void **)&mhd.add_response_header =
      need(lib, "MHD_add_response_header", &ok);
  *(void **)&mhd.queue_response = need(lib, "MHD_queue_response", &ok);
  *(void **)&mhd.destroy_response = need(lib, "MHD_destroy_response", &ok);
  mhd_ok = ok;
  if (!ok)
    dlclose(lib);
}

struct strata__metrics_http {
  struct MHD_Daemon *daemon;
  int port;
};

/* "HOST:PORT", ":PORT" or "PORT" into an IPv4 address; no host is
 * 127.0.0.1. @return false when malformed */
static bool parse_addr(const char *addr, struct sockaddr_in *sa) {
  const char *colon = strrchr(addr, ':');
  const char *port = colon ? colon + 1 : addr;
  char host[64] = "127.0.0.1";
  if (colon && colon > addr) {
    size_t n = (size_t)(colon - addr);
    if (n >= sizeof host)
      return false;
    memcpy(host, addr, n);
    host[n] = '\0';
    if (!strcmp(host, "localhost"))
      strcpy(host, "127.0.0.1");
  }
  char *end;
  long p = strtol(port, &end, 10);
  if (!*port || *end || p < 0 || p > 65535)
    return false;
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)p);
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, const char *body, size_t len,
                              const char *allow) {
  struct MHD_Response *r =
      mhd.create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (allow)
    mhd.add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result rc = mhd.queue_response(conn, status, r);
  mhd.destroy_response(r);
  return rc;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status,
                                   const char *text, const char *allow) {
  return answer(conn, status, "text/plain; charset=utf-8", text, strlen(text),
                allow);
}

/* Every request: GET or HEAD /metrics gets the exposition, another path
 * 404, another method 405. Answered on the first call, before any body a
 * client sends (libmicrohttpd then discards it). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls) {
  strata_runtime_t *rt = cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)req_cls;
  if (strcmp(method, MHD_HTTP_METHOD_GET) &&
      strcmp(method, MHD_HTTP_METHOD_HEAD))
    return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n",
                       "GET, HEAD");
  if (strcmp(url, "/metrics"))
    return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n",
                       NULL);
  strata__expo_t x;
  strata__expo_init(&x, &rt->alloc);
  strata__metrics_collect(rt, &x);
  enum MHD_Result rc;
  if (x.failed) {
    rc = answer_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n",
                     NULL);
  } else {
    atomic_fetch_add(&rt->metrics.scrapes, 1);
    rc = answer(conn, MHD_HTTP_OK, CONTENT_TYPE, x.buf ? x.buf : "", x.len,
                NULL);
  }
  strata__expo_fini(&x);
  return rc;
}

/* libmicrohttpd's complaints (a refused connection, a bad request) go to
 * the runtime's log at DEBUG: a client's misbehaviour is not the
 * runtime's error. */
static void on_log(void *cls, const char *fmt, va_list ap) {
  strata_runtime_t *rt = cls;
  char msg[256];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\n")] = '\0';
  STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP, "endpoint: %s", msg);
}

int strata__metrics_http_start(strata_runtime_t *rt, const char *addr) {
  strata__metrics_t *m = &rt->metrics;
  struct sockaddr_in sa;
  if (!parse_addr(addr, &sa)) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "metrics address '%s' is not HOST:PORT, :PORT or PORT (an "
               "IPv4 address or localhost, a port 0-65535)",
               addr);
    return STRATA_EINVAL;
  }
  if (m->http)
    return STRATA_EBUSY;
  pthread_once(&mhd_once, load_mhd);
  if (!mhd_ok) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "metrics endpoint: cannot load libmicrohttpd (%s): apt-get "
               "install libmicrohttpd12",
               mhd_error);
    return STRATA_ENOTSUP;
  }
  struct strata__metrics_http *h = strata__zalloc(&rt->alloc, sizeof *h);
  if (!h)
    return STRATA_ENOMEM;
  h->daemon = mhd.start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0,
      NULL, NULL, on_request, rt, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_S,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_BYTES,
      MHD_OPTION_EXTERNAL_LOGGER, on_log, rt, MHD_OPTION_END);
  if (!h->daemon) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "metrics endpoint: cannot listen on %s (address in use, or "
               "not an address of this machine)",
               addr);
    strata__free(&rt->alloc, h, sizeof *h);
    return STRATA_EIO;
  }
  const union MHD_DaemonInfo *info =
      mhd.get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? info->port : ntohs(sa.sin_port);
  char host[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
  STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
             "metrics endpoint: http://%s:%d/metrics", host, h->port);
  m->http = h;
  atomic_store(&m->http_port, h->port);
  return STRATA_OK;
}

void strata__metrics_http_stop(strata_runtime_t *rt) {
  struct strata__metrics_http *h = rt->metrics.http;
  if (!h)
    return;
  atomic_store(&rt->metrics.http_port, 0);
  mhd.stop_daemon(h->daemon);
  strata__free(&rt->alloc, h, sizeof *h);
  rt->metrics.http = NULL;
}

#else /* !HAVE_MICROHTTPD */

int strata__metrics_http_start(strata_runtime_t *rt, const char *addr) {
  (void)addr;
  STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
             "metrics endpoint: this build has no libmicrohttpd (configure "
             "found none); the textfile mode and strata_metrics_write work");
  return STRATA_ENOTSUP;
}

void strata__metrics_http_stop(strata_runtime_t *rt) { (void)rt; }

#endif
