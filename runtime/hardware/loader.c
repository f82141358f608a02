/* SPDX-License-Identifier: MIT */
/* runtime/hardware/loader.c: finding, loading, checking and starting backend
 * plugins with libltdl. A plugin that fails any step is logged with the
 * reason and skipped; only a backend the embedder marked required turns a
 * failure into an error. */
#include "config.h"

#include "runtime.h"
#include "dispatch.h"

#include "optlist.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define COMP "loader"
#define MAX_NAME 64

#ifndef STRATA_BACKEND_PATH
#define STRATA_BACKEND_PATH ""
#endif

/* libltdl keeps global state and has no locking of its own: every ltdl
 * call, from any runtime in the process, goes through this mutex. */
static pthread_mutex_t ltdl_mu = PTHREAD_MUTEX_INITIALIZER;

/* The fields of ABI 3.0, which every plugin must provide (a later minor
 * takes its fields from `reserved`). */
#define COMPONENT_MIN_SIZE offsetof(strata_backend_component_t, reserved)

/* {=== The option strings (sandbox/optlist.h) ===} */

static const strata__optfmt_t BACKENDS = {.option = "backends",
                                          .kind = STRATA__OPT_LIST};
static const strata__optfmt_t REQUIRED = {.option = "required_backends",
                                          .kind = STRATA__OPT_LIST};
static const strata__optfmt_t OPTIONS = {.option = "backend_options",
                                         .kind = STRATA__OPT_SECTIONS};
static const strata__optfmt_t SETTINGS = {.option = "backend_options",
                                          .kind = STRATA__OPT_MAP};
/* PATH style: empty entries are skipped, as they always were. */
static const strata__optfmt_t PATH = {.option = "backend_path",
                                      .kind = STRATA__OPT_LIST,
                                      .sep = ':',
                                      .path = true};

/* Is `name` an item of the list `list` (NULL: no)? */
static bool list_has(const char *list, const char *name) {
  strata__optitem_t it;
  return list && strata__opt_find(&BACKENDS, strata__opt_span(list), name, &it);
}

/* Plugin names are what a file may be called and a C symbol derived. */
static bool valid_name(const char *s, size_t len) {
  if (!len || len >= MAX_NAME)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
        s[i] != '-' && s[i] != '_')
      return false;
  return true;
}

/* Copy backend `name`'s settings in backend_options (without "name:")
 * into *out, which stays NULL when the backend has none.
 * @return 0; STRATA_ENOMEM */
static int options_of(const strata__allocator_t *a, const char *all,
                      const char *name, char **out) {
  strata__optitem_t it;
  *out = NULL;
  if (!strata__opt_find(&OPTIONS, strata__opt_span(all), name, &it))
    return STRATA_OK;
  if (!(*out = strata__alloc(a, it.value.len + 1)))
    return STRATA_ENOMEM;
  memcpy(*out, it.value.s, it.value.len);
  (*out)[it.value.len] = '\0';
  return STRATA_OK;
}

/* Find key in a backend's settings; *index (may be NULL) tells which
 * setting it is. @return the value, or absent. */
static strata__optspan_t find_option(const char *opts, const char *key,
                                     size_t *index) {
  strata__optitem_t it;
  size_t i = 0;
  for (size_t c = 0;
       strata__opt_next(&SETTINGS, strata__opt_span(opts), &c, &it); i++)
    if (strata__opt_is(it.key, key)) {
      if (index)
        *index = i;
      return it.value;
    }
  return (strata__optspan_t){NULL, 0, 0};
}

/* A setting the backend never asked for during init is most likely a
 * typo ("workrs=2") that leaves it on its defaults: say so. A WARN, not
 * an error: only the backend knows its keys, and a newer one may take
 * keys an older one does not. */
static void warn_unread(strata_runtime_t *rt, strata__backend_t *be) {
  uint64_t read = atomic_load(&be->options_read);
  strata__optitem_t it;
  char q[64];
  size_t i = 0;
  for (size_t c = 0;
       strata__opt_next(&SETTINGS, strata__opt_span(be->options), &c, &it); i++)
    if (i < 64 && !(read >> i & 1))
      STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
                 "backend_options: backend '%s' did not read its setting "
                 "%s (not a key it knows?)",
                 be->name, strata__opt_quote(it.key, q, sizeof q));
}

/* The names of a backend list must be names a plugin can have.
 * @return 0; STRATA_EINVAL (logged) */
static int check_names(strata_runtime_t *rt, const strata__optfmt_t *fmt,
                       const char *text) {
  strata__optitem_t it;
  char q[64];
  for (size_t c = 0; strata__opt_next(fmt, strata__opt_span(text), &c, &it);)
    if (!valid_name(it.key.s, it.key.len)) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "%s: position %zu: %s is not a backend name (lower-case "
                 "letters, digits, '-' and '_', at most %d bytes)",
                 fmt->option, it.key.pos,
                 strata__opt_quote(it.key, q, sizeof q), MAX_NAME - 1);
      return STRATA_EINVAL;
    }
  return STRATA_OK;
}

/* A malformed backend list or backend_options fails creation: ignored, it
 * would run a machine other than the one asked for (a typo in a setting
 * would leave a backend on its defaults, silently).
 * @return 0; STRATA_EINVAL (logged) */
static int check_options(strata_runtime_t *rt,
                         const strata_runtime_opts_t *opts) {
  const struct {
    const strata__optfmt_t *fmt;
    const char *text;
  } all[] = {{&BACKENDS, opts->backends},
             {&REQUIRED, opts->required_backends},
             {&OPTIONS, opts->backend_options},
             {&PATH, opts->backend_path}};
  char err[256];
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    if (strata__opt_check(all[i].fmt, strata__opt_span(all[i].text), err,
                          sizeof err)) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "%s", err);
      return STRATA_EINVAL;
    }
    if (all[i].fmt != &PATH && check_names(rt, all[i].fmt, all[i].text))
      return STRATA_EINVAL;
  }
  return STRATA_OK;
}

/* {=== Services offered to backends ===} */

static void svc_log(strata_core_t *core, strata_log_level_t level,
                    const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  strata__logv(&core->rt->log, level, core->name, fmt, ap);
  va_end(ap);
}

static int svc_option(strata_core_t *core, const char *key, char *buf,
                      size_t len) {
  size_t i = 0;
  strata__optspan_t v = key ? find_option(core->options, key, &i)
                            : (strata__optspan_t){NULL, 0, 0};
  if (!v.s)
    return STRATA_ENOENT;
  if (i < 64)
    atomic_fetch_or(&core->options_read, UINT64_C(1) << i);
  if (!buf || v.len >= len)
    return STRATA_ERANGE;
  memcpy(buf, v.s, v.len);
  buf[v.len] = '\0';
  return STRATA_OK;
}

static void *svc_alloc(strata_core_t *core, void *ptr, size_t osize,
                       size_t nsize) {
  return strata__alloc_via((void *)&core->rt->alloc, ptr, ptr ? osize : 0,
                           nsize);
}

static void svc_copy_done(strata_core_t *core, void *token, int status) {
  (void)core;
  strata__copy_done(token, status);
}

static void init_services(strata__backend_t *be) {
  be->services = (strata_core_services_t){
      .abi_major = STRATA_BACKEND_ABI_MAJOR,
      .abi_minor = STRATA_BACKEND_ABI_MINOR,
      .struct_size = sizeof(strata_core_services_t),
      .core = be,
      .log = svc_log,
      .option = svc_option,
      .alloc = svc_alloc,
      .next = strata__dispatch_next,
      .complete = strata__dispatch_complete,
      .bind_worker = strata__dispatch_bind_worker,
      .device_failed = strata__dispatch_device_failed,
      .copy_done = svc_copy_done,
  };
  be->config = (strata_backend_config_t){
      .struct_size = sizeof(strata_backend_config_t),
      .machine = &be->rt->topo.view,
  };
}

/* {=== Candidates in the backend path ===} */

typedef struct candidate {
  char name[MAX_NAME];
  char *dir;
} candidate_t;

typedef struct candidates {
  candidate_t *v;
  size_t n, cap;
} candidates_t;

static int add_candidate(strata_runtime_t *rt, candidates_t *c, const char *dir,
                         const char *file) {
  const char *dot = strrchr(file, '.');
  if (!dot || (strcmp(dot, ".la") && strcmp(dot, ".so")))
    return STRATA_OK;
  size_t len = (size_t)(dot - file);
  if (!valid_name(file, len))
    return STRATA_OK;
  for (size_t i = 0; i < c->n; i++)
    if (strlen(c->v[i].name) == len && !strncmp(c->v[i].name, file, len))
      return STRATA_OK; /* first directory in the path wins */
  int rc =
      strata__grow(&rt->alloc, (void **)&c->v, &c->cap, c->n + 1, sizeof *c->v);
  if (rc)
    return rc;
  candidate_t *cand = &c->v[c->n];
  memcpy(cand->name, file, len);
  cand->name[len] = '\0';
  if (!(cand->dir = strata__strdup(&rt->alloc, dir)))
    return STRATA_ENOMEM;
  c->n++;
  return STRATA_OK;
}

static int scan_dir(strata_runtime_t *rt, candidates_t *c, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
               "backend directory '%s' not readable", dir);
    return STRATA_OK;
  }
  int rc = STRATA_OK;
  for (struct dirent *e; rc == STRATA_OK && (e = readdir(d));)
    rc = add_candidate(rt, c, dir, e->d_name);
  closedir(d);
  return rc;
}

static int scan_path(strata_runtime_t *rt, candidates_t *c, const char *path) {
  char dir[4096];
  strata__optitem_t it;
  for (size_t cur = 0;
       strata__opt_next(&PATH, strata__opt_span(path), &cur, &it);)
    if (it.key.len < sizeof dir) {
      memcpy(dir, it.key.s, it.key.len);
      dir[it.key.len] = '\0';
      int rc = scan_dir(rt, c, dir);
      if (rc)
        return rc;
    }
  return STRATA_OK;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const candidate_t *)a)->name, ((const candidate_t *)b)->name);
}

static void free_candidates(strata_runtime_t *rt, candidates_t *c) {
  for (size_t i = 0; i < c->n; i++)
    strata__strfree(&rt->alloc, c->v[i].dir);
  strata__free(&rt->alloc, c->v, c->cap * sizeof *c->v);
}

/* Settings for a backend that no directory of the path holds are a
 * mistake (a misspelt name, a wrong path): refused, not ignored. Settings
 * for one that is there but not loaded (excluded by `backends`, or it
 * fails) are not: the same options may serve several configurations.
 * @return 0; STRATA_EINVAL (logged) */
static int check_sections(strata_runtime_t *rt, const candidates_t *c,
                          const char *options, const char *path) {
  strata__optitem_t it;
  char q[64];
  for (size_t cur = 0;
       strata__opt_next(&OPTIONS, strata__opt_span(options), &cur, &it);) {
    bool found = false;
    for (size_t i = 0; i < c->n && !found; i++)
      found = strata__opt_is(it.key, c->v[i].name);
    if (!found) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "backend_options: position %zu: no backend %s in the "
                 "backend path '%s'",
                 it.key.pos, strata__opt_quote(it.key, q, sizeof q), path);
      return STRATA_EINVAL;
    }
  }
  return STRATA_OK;
}

/* {=== Loading one plugin ===} */

static void backend_free(strata_runtime_t *rt, strata__backend_t *be) {
  if (be->dl) {
    pthread_mutex_lock(&ltdl_mu);
    lt_dlclose(be->dl);
    pthread_mutex_unlock(&ltdl_mu);
  }
  strata__strfree(&rt->alloc, be->name);
  strata__strfree(&rt->alloc, be->path);
  strata__strfree(&rt->alloc, be->options);
  strata__free(&rt->alloc, be, sizeof *be);
}

/* Reserved slots become fields in later minor versions: a plugin of our
 * minor must leave them NULL (only checked when its struct has them). */
static bool reserved_clear(const strata_backend_component_t *c) {
  if (c->struct_size < sizeof *c)
    return true;
  for (size_t i = 0; i < sizeof c->reserved / sizeof *c->reserved; i++)
    if (c->reserved[i])
      return false;
  return true;
}

/* Open the module and check the exported component against our ABI.
 * @return 0 with be->dl and be->comp set, or why not (logged). */
static int open_checked(strata_runtime_t *rt, strata__backend_t *be) {
  char sym[MAX_NAME + 32];
  snprintf(sym, sizeof sym, "strata_backend_%s_component", be->name);
  for (char *p = sym; *p; p++)
    if (*p == '-')
      *p = '_';

  int rc = STRATA_OK;
  const char *why = NULL;
  char detail[160] = "";
  pthread_mutex_lock(&ltdl_mu);
  lt_dladvise adv;
  if (lt_dladvise_init(&adv)) {
    why = "cannot set up libltdl";
    rc = STRATA_EBACKEND;
    goto out;
  }
  if (!lt_dladvise_ext(&adv) && !lt_dladvise_local(&adv))
    be->dl = lt_dlopenadvise(be->path, adv);
  lt_dladvise_destroy(&adv);
  if (!be->dl) {
    /* libltdl reports every dlopen failure (not ELF, wrong architecture,
     * a library it needs missing) as "file not found", although the scan
     * just saw the file: say so, or the message misleads. */
    const char *err = lt_dlerror();
    snprintf(detail, sizeof detail, "cannot load: %s%s",
             err ? err : "unknown error",
             err && !strcmp(err, "file not found")
                 ? " (the file exists: it is not a loadable module for "
                   "this system, or a library it needs is missing)"
                 : "");
    rc = STRATA_EBACKEND;
    goto out;
  }
  const strata_backend_component_t *c =
      (const strata_backend_component_t *)(uintptr_t)lt_dlsym(be->dl, sym);
  if (!c) {
    snprintf(detail, sizeof detail, "it does not export %s", sym);
    rc = STRATA_EABI;
  } else if (c->abi_major != STRATA_BACKEND_ABI_MAJOR ||
             c->abi_minor > STRATA_BACKEND_ABI_MINOR) {
    snprintf(detail, sizeof detail,
             "it was built for backend ABI %u.%u, this runtime speaks %d.%d",
             c->abi_major, c->abi_minor, STRATA_BACKEND_ABI_MAJOR,
             STRATA_BACKEND_ABI_MINOR);
    rc = STRATA_EABI;
  } else if (c->struct_size < COMPONENT_MIN_SIZE) {
    snprintf(detail, sizeof detail,
             "its component struct is %u bytes, at least %zu are needed",
             c->struct_size, (size_t)COMPONENT_MIN_SIZE);
    rc = STRATA_EABI;
  } else if (!c->name || strcmp(c->name, be->name)) {
    snprintf(detail, sizeof detail,
             "it calls itself '%s', which does not match its file name",
             c->name ? c->name : "(null)");
    rc = STRATA_EABI;
  } else if (!c->init || !c->probe || !c->start || !c->stop || !c->fini) {
    why = "a required entry point is NULL";
    rc = STRATA_EABI;
  } else if (!reserved_clear(c)) {
    why = "its reserved fields are not NULL";
    rc = STRATA_EABI;
  } else {
    be->comp = c;
  }
out:
  if (rc && be->dl) {
    lt_dlclose(be->dl);
    be->dl = NULL;
  }
  pthread_mutex_unlock(&ltdl_mu);
  if (rc)
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP, "backend '%s' (%s) skipped: %s",
               be->name, be->path, why ? why : detail);
  return rc;
}

/* Initialise, probe and start an opened backend; its devices join the
 * runtime. @return 0 (possibly with no devices: *ndev tells), or why not. */
static int bring_up(strata_runtime_t *rt, strata__backend_t *be, size_t *ndev) {
  const strata_backend_component_t *c = be->comp;
  const strata_backend_device_t *devs = NULL;
  size_t n = 0;
  const char *step = "init";
  int rc = c->init(&be->services, &be->config, &be->state);
  if (rc)
    goto fail;
  warn_unread(rt, be);
  step = "probe";
  if ((rc = c->probe(be->state, &devs, &n)))
    goto fail_fini;
  char why[256];
  if ((rc = strata__devices_check(rt, be, devs, n, why, sizeof why))) {
    /* One lying entry makes the whole list suspect, and start() takes
     * the list whole (handles[i] is device i): refuse the backend. */
    c->fini(be->state);
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "backend '%s' (%s) skipped: probe reported a malformed "
               "device list: %s",
               be->name, be->path, why);
    return rc;
  }
  *ndev = n;
  if (!n)
    return STRATA_OK;
  step = "device registration";
  if ((rc = strata__devices_add(rt, be, devs, n)))
    goto fail_fini;
  strata_device_handle_t **handles = &rt->devices[rt->ndevices - n];
  step = "start";
  if ((rc = c->start(be->state, handles, n))) {
    strata__devices_stop(rt, be);
    c->stop(be->state);
    strata__devices_drop_last(rt, n);
    goto fail_fini;
  }
  be->started = true;
  return STRATA_OK;
fail_fini:
  c->fini(be->state);
fail:
  STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
             "backend '%s' (%s) skipped: %s failed: %s", be->name, be->path,
             step, strata_strerror(rc));
  return rc < 0 ? rc : STRATA_EBACKEND;
}

/* Append "workers=N" to the cpu backend's options (sized exactly: they
 * may be of any length). @return 0; STRATA_ENOMEM */
static int add_workers(strata_runtime_t *rt, strata__backend_t *be,
                       unsigned workers) {
  char extra[32];
  snprintf(extra, sizeof extra, "workers=%u", workers);
  const char *old = be->options ? be->options : "";
  size_t n = strlen(old) + (*old ? 1 : 0) + strlen(extra) + 1;
  char *s = strata__alloc(&rt->alloc, n);
  if (!s)
    return STRATA_ENOMEM;
  snprintf(s, n, "%s%s%s", old, *old ? "," : "", extra);
  strata__strfree(&rt->alloc, be->options);
  be->options = s;
  return STRATA_OK;
}

static int load_one(strata_runtime_t *rt, const candidate_t *cand,
                    const strata_runtime_opts_t *opts) {
  int rc = STRATA_ENOMEM;
  size_t ndev = 0;
  strata__backend_t *be = strata__zalloc(&rt->alloc, sizeof *be);
  if (!be)
    return rc;
  be->rt = rt;
  size_t plen = strlen(cand->dir) + strlen(cand->name) + 2;
  if (!(be->name = strata__strdup(&rt->alloc, cand->name)) ||
      !(be->path = strata__alloc(&rt->alloc, plen)))
    goto fail;
  snprintf(be->path, plen, "%s/%s", cand->dir, cand->name);
  if (options_of(&rt->alloc, opts->backend_options, cand->name, &be->options))
    goto fail;
  if (!strcmp(cand->name, "cpu") && opts->cpu_workers &&
      !find_option(be->options, "workers", NULL).s &&
      add_workers(rt, be, opts->cpu_workers))
    goto fail;
  init_services(be);
  if ((rc = strata__grow(&rt->alloc, (void **)&rt->backends, &rt->cap_backends,
                         rt->nbackends + 1, sizeof *rt->backends)) ||
      (rc = open_checked(rt, be)) || (rc = bring_up(rt, be, &ndev)))
    goto fail;
  if (!ndev) {
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
               "backend '%s' found no device; unloaded", be->name);
    be->comp->fini(be->state);
    backend_free(rt, be);
    return STRATA_ENODEV;
  }
  STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
             "backend '%s' (%s) loaded with %zu device(s)", be->name, be->path,
             ndev);
  rt->backends[rt->nbackends++] = be;
  return STRATA_OK;
fail:
  backend_free(rt, be);
  return rc;
}

/* {=== Loader entry points ===} */

int strata__loader_start(strata_runtime_t *rt,
                         const strata_runtime_opts_t *opts) {
  const char *path =
      opts->backend_path ? opts->backend_path : STRATA_BACKEND_PATH;
  candidates_t cands = {0};
  if (check_options(rt, opts))
    return STRATA_EINVAL;
  strata__devices_set_idle_poll(rt, opts->idle_poll_us);
  pthread_mutex_lock(&ltdl_mu);
  int rc = lt_dlinit() ? STRATA_EBACKEND : STRATA_OK;
  pthread_mutex_unlock(&ltdl_mu);
  rt->ltdl_ready = rc == STRATA_OK;
  if (rc) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "lt_dlinit failed");
    return rc;
  }
  if ((rc = scan_path(rt, &cands, path)) ||
      (rc = check_sections(rt, &cands, opts->backend_options, path)))
    goto out;
  if (cands.n > 1) /* qsort(NULL, 0, ...) is undefined */
    qsort(cands.v, cands.n, sizeof *cands.v, by_name);
  for (size_t i = 0; i < cands.n; i++) {
    const char *name = cands.v[i].name;
    if (opts->backends && !list_has(opts->backends, name))
      continue;
    int lrc = load_one(rt, &cands.v[i], opts);
    if (lrc == STRATA_ENOMEM) {
      rc = lrc;
      goto out;
    }
  }
  /* Every required backend must now be running with devices. */
  strata__optitem_t it;
  for (size_t cur = 0; strata__opt_next(
           &REQUIRED, strata__opt_span(opts->required_backends), &cur, &it);) {
    bool up = false;
    for (size_t i = 0; i < rt->nbackends && !up; i++)
      up = strata__opt_is(it.key, rt->backends[i]->name);
    if (up)
      continue;
    char name[MAX_NAME];
    snprintf(name, sizeof name, "%.*s", (int)it.key.len, it.key.s);
    if (opts->backends && !list_has(opts->backends, name))
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "required backend '%s' is excluded by the backends "
                 "option '%s'",
                 name, opts->backends);
    else
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "required backend '%s' is not available (searched '%s')", name,
                 path);
    rc = STRATA_EBACKEND;
  }
  /* Peer lists may name devices of any backend: match them once all are
   * in. */
  if (rc == STRATA_OK)
    rc = strata__peers_build(rt);
out:
  free_candidates(rt, &cands);
  return rc;
}

void strata__loader_stop(strata_runtime_t *rt) {
  for (size_t i = rt->nbackends; i-- > 0;) {
    strata__backend_t *be = rt->backends[i];
    strata__devices_stop(rt, be);
    if (be->started)
      be->comp->stop(be->state);
    be->comp->fini(be->state);
    backend_free(rt, be);
  }
  strata__peers_free(rt);
  strata__free(&rt->alloc, rt->backends,
               rt->cap_backends * sizeof *rt->backends);
  rt->backends = NULL;
  rt->nbackends = rt->cap_backends = 0;
  if (rt->ltdl_ready) {
    pthread_mutex_lock(&ltdl_mu);
    lt_dlexit();
    pthread_mutex_unlock(&ltdl_mu);
    rt->ltdl_ready = false;
  }
}
