/* SPDX-License-Identifier: MIT */
/* tests/fakecuda/fakecuda.c: a fake CUDA runtime for the tests, built as
 * libcudart.so.13 with the real library's version node, so that the CUDA
 * backends' real code runs on machines without a GPU (see fakecuda.h for
 * what it simulates). It implements the subset of the runtime API the
 * backends and the test kernels call, with the real signatures from the
 * toolkit's headers; whatever it does not implement is missing at link
 * time, not silently wrong. */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fakecuda.h"

#define MAX_DEVICES 8
#define MAX_BLOCKS 65536
#define PUBLIC __attribute__((visibility("default")))

/* {=== The cards ===} */

typedef struct preset {
  const char *key, *name;
  size_t memory;
  int bus_width, cc_major, cc_minor, sms, ecc, clock_khz, mem_clock_khz;
} preset_t;

static const preset_t PRESETS[] = {
    {"h100", "NVIDIA H100 80GB HBM3", (size_t)80 << 30, 5120, 9, 0, 132, 1,
     1980000, 2619000},
    {"rtx4090", "NVIDIA GeForce RTX 4090", (size_t)24 << 30, 384, 8, 9, 128, 0,
     2520000, 10501000},
};

typedef struct fake_stream fake_stream_t;

typedef struct fake_dev {
  const preset_t *p;
  size_t used;       /* bytes allocated (under G.mu) */
  atomic_int sticky; /* the card's sticky error; 0 none */
  atomic_long copy_fail, oom, sticky_after, op_delay_us;
  atomic_long memory_limit;       /* bytes the card really has; 0: all */
  unsigned bus;                   /* its PCI bus: 0000:<bus>:00.0 */
  bool peer_enabled[MAX_DEVICES]; /* under G.mu */
  fake_stream_t *legacy;          /* the default stream, made on demand */
  atomic_uint busy;               /* streams running an operation now */
  struct {
    atomic_ullong h2d, d2h, d2d, peer_direct, peer_staged, pageable, hostfns,
        prefetches, mallocs, frees, pool_allocs;
    atomic_uint max_busy;
  } n;
} fake_dev_t;

enum block_kind { BLOCK_DEVICE, BLOCK_PINNED, BLOCK_REGISTERED, BLOCK_MANAGED };

/* An allocation the fake knows. Device blocks are one memfd mapped twice:
 * `addr` (handed out, no access) and `view` (the fake's own, read-write). */
typedef struct block {
  char *addr, *view;
  size_t size, mapped;
  int dev; /* device blocks: the card; managed: where it was prefetched */
  enum block_kind kind;
} block_t;

static struct {
  atomic_bool inited; /* the devices were read */
  atomic_int nstreams;
  pthread_mutex_t mu; /* blocks, used, peer_enabled, legacy, the devices */
  cudaError_t init_error;
  int ndev;
  fake_dev_t dev[MAX_DEVICES];
  block_t blocks[MAX_BLOCKS];
  size_t nblocks;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static __thread int cur_dev;
static __thread cudaError_t last_error;

static void read_devices(void) {
  const char *s = getenv("FAKECUDA_DEVICES");
  if (!s || !*s || !strcmp(s, "none")) {
    G.init_error = cudaErrorInsufficientDriver;
    return;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save, *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    const preset_t *p = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++)
      if (!strcmp(tok, PRESETS[i].key))
        p = &PRESETS[i];
    if (!p || G.ndev == MAX_DEVICES) {
      fprintf(stderr, "fakecuda: FAKECUDA_DEVICES: cannot make '%s'\n", tok);
      G.init_error = cudaErrorInvalidValue;
      G.ndev = 0;
      return;
    }
    G.dev[G.ndev].p = p;
    G.dev[G.ndev].bus = 0x10 + (unsigned)G.ndev;
    atomic_init(&G.dev[G.ndev].sticky_after, -1);
    G.ndev++;
  }
  /* FAKECUDA_BUSES ("3b,af"): the cards' PCI buses, in hex, to match an
   * hwloc XML machine; else 0x10, 0x11, ... */
  const char *buses = getenv("FAKECUDA_BUSES");
  for (int d = 0; buses && *buses && d < G.ndev; d++) {
    char *end;
    unsigned long bus = strtoul(buses, &end, 16);
    if (end == buses || bus > 0xff)
      break;
    G.dev[d].bus = (unsigned)bus;
    buses = *end == ',' ? end + 1 : end;
  }
}

static cudaError_t fail(cudaError_t e) {
  if (e != cudaSuccess)
    last_error = e;
  return e;
}

/* Every call starts here: the devices are read once, and a missing
 * driver answers every call. */
static cudaError_t ready(void) {
  if (!atomic_load_explicit(&G.inited, memory_order_acquire)) {
    pthread_mutex_lock(&G.mu);
    if (!atomic_load(&G.inited)) {
      read_devices();
      atomic_store_explicit(&G.inited, true, memory_order_release);
    }
    pthread_mutex_unlock(&G.mu);
  }
  return fail(G.init_error);
}

static cudaError_t usable(int dev) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (dev < 0 || dev >= G.ndev)
    return fail(cudaErrorInvalidDevice);
  return fail((cudaError_t)atomic_load(&G.dev[dev].sticky));
}

static void note_max(atomic_uint *max, unsigned v) {
  unsigned m = atomic_load(max);
  while (v > m && !atomic_compare_exchange_weak(max, &m, v))
    ;
}

/* {=== Blocks ===} */

static block_t *find_block(const void *p) {
  const char *c = p;
  for (size_t i = 0; i < G.nblocks; i++) {
    block_t *b = &G.blocks[i];
    if (c >= b->addr && c < b->addr + (b->size ? b->size : 1))
      return b;
  }
  return NULL;
}

static block_t *add_block(void) {
  return G.nblocks < MAX_BLOCKS ? &G.blocks[G.nblocks++] : NULL;
}

static void drop_block(block_t *b) { *b = G.blocks[--G.nblocks]; }

static size_t page_round(size_t n) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  return n ? (n + pg - 1) / pg * pg : pg;
}

/* Where the bytes at p can be read by the fake, and what they are. */
typedef struct where {
  char *view;
  enum block_kind kind;
  int dev;     /* device blocks: the card; else -1 */
  bool pinned; /* host memory the card's DMA could reach */
} where_t;

static bool locate(const void *p, size_t n, where_t *w) {
  pthread_mutex_lock(&G.mu);
  block_t *b = find_block(p);
  bool ok = true;
  if (!b) {
    *w = (where_t){.view = (char *)p, .kind = BLOCK_PINNED, .dev = -1};
  } else {
    size_t off = (size_t)((const char *)p - b->addr);
    ok = off + n <= b->size;
    *w = (where_t){.view = b->view + off,
                   .kind = b->kind,
                   .dev = b->kind == BLOCK_DEVICE ? b->dev : -1,
                   .pinned = b->kind != BLOCK_DEVICE};
  }
  pthread_mutex_unlock(&G.mu);
  return ok;
}

PUBLIC void *fakecuda_host_ptr(const void *p) {
  where_t w;
  if (!locate(p, 0, &w))
    return NULL;
  return w.view;
}

PUBLIC int fakecuda_managed_location(const void *p) {
  pthread_mutex_lock(&G.mu);
  block_t *b = find_block(p);
  int loc = b && b->kind == BLOCK_MANAGED ? b->dev : -2;
  pthread_mutex_unlock(&G.mu);
  return loc;
}

/* {=== Events ===} */

struct CUevent_st {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t recorded, done; /* records asked; records reached */
  int dev;                 /* card of the last record */
  int made_on;             /* the card current when it was created */
  /* Stream operations naming it, not run yet; destroyed with some
   * pending, it is freed by the last of them, as the real runtime
   * releases an event destroyed while a stream still holds it. */
  unsigned pending;
  bool destroyed;
};

static void event_free(cudaEvent_t ev) {
  pthread_mutex_destroy(&ev->mu);
  pthread_cond_destroy(&ev->cv);
  free(ev);
}

/* A stream operation naming ev has run (ev->mu held; unlocks it). */
static void event_unpend(cudaEvent_t ev) {
  bool last = --ev->pending == 0 && ev->destroyed;
  pthread_mutex_unlock(&ev->mu);
  if (last)
    event_free(ev);
}

static bool event_reached(cudaEvent_t e, uint64_t gen) {
  return e->done >= gen || atomic_load(&G.dev[e->dev].sticky);
}

/* {=== Streams: a thread running a FIFO of operations ===} */

enum op_kind { OP_COPY, OP_HOSTFN, OP_RECORD, OP_WAIT, OP_PREFETCH };

typedef struct op {
  enum op_kind kind;
  struct op *next;
  void *dst;
  const void *src;
  size_t n;
  cudaHostFn_t fn;
  void *ud;
  cudaEvent_t ev;
  uint64_t gen;
  int loc;
} op_t;

struct fake_stream {
  int dev;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  op_t *head, *tail;
  bool running, stop;
};

static void count_op(fake_dev_t *d) {
  long left = atomic_load(&d->sticky_after);
  while (left > 0 &&
         !atomic_compare_exchange_weak(&d->sticky_after, &left, left - 1))
    ;
  if (left == 1) { /* that was the last good one */
    int none = 0;
    atomic_compare_exchange_strong(&d->sticky, &none, cudaErrorIllegalAddress);
  }
}

static void run_op(fake_stream_t *s, op_t *op) {
  fake_dev_t *d = &G.dev[s->dev];
  long delay = atomic_load(&d->op_delay_us);
  if (delay > 0 && (op->kind == OP_COPY || op->kind == OP_HOSTFN))
    usleep((useconds_t)delay);
  bool dead = atomic_load(&d->sticky) != 0;
  switch (op->kind) {
  case OP_COPY:
    if (!dead) {
      where_t dw, sw;
      locate(op->dst, op->n, &dw);
      locate(op->src, op->n, &sw);
      memmove(dw.view, sw.view, op->n);
      count_op(d);
    }
    break;
  case OP_HOSTFN:
    if (!dead) {
      op->fn(op->ud);
      count_op(d);
    }
    break;
  case OP_PREFETCH:
    if (!dead) {
      pthread_mutex_lock(&G.mu);
      block_t *b = find_block(op->src);
      if (b)
        b->dev = op->loc;
      pthread_mutex_unlock(&G.mu);
    }
    break;
  case OP_RECORD:
    pthread_mutex_lock(&op->ev->mu);
    if (op->ev->done < op->gen)
      op->ev->done = op->gen;
    pthread_cond_broadcast(&op->ev->cv);
    event_unpend(op->ev);
    break;
  case OP_WAIT:
    pthread_mutex_lock(&op->ev->mu);
    while (!event_reached(op->ev, op->gen)) {
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      t.tv_nsec += 1000000;
      if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&op->ev->cv, &op->ev->mu, &t);
    }
    event_unpend(op->ev);
    break;
  }
}

static void *stream_main(void *arg) {
  fake_stream_t *s = arg;
  fake_dev_t *d = &G.dev[s->dev];
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->head && !s->stop)
      pthread_cond_wait(&s->cv, &s->mu);
    if (!s->head)
      break;
    op_t *op = s->head;
    s->running = true;
    pthread_mutex_unlock(&s->mu);
    note_max(&d->n.max_busy, atomic_fetch_add(&d->busy, 1) + 1);
    run_op(s, op);
    atomic_fetch_sub(&d->busy, 1);
    pthread_mutex_lock(&s->mu);
    s->head = op->next;
    if (!s->head)
      s->tail = NULL;
    s->running = false;
    pthread_cond_broadcast(&s->cv);
    free(op);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static cudaError_t stream_new(int dev, fake_stream_t **out) {
  fake_stream_t *s = calloc(1, sizeof *s);
  if (!s)
    return fail(cudaErrorMemoryAllocation);
  s->dev = dev;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, stream_main, s)) {
    free(s);
    return fail(cudaErrorMemoryAllocation);
  }
  atomic_fetch_add(&G.nstreams, 1);
  *out = s;
  return cudaSuccess;
}

static fake_stream_t *resolve(cudaStream_t stream) {
  if (stream)
    return (fake_stream_t *)stream;
  fake_dev_t *d = &G.dev[cur_dev];
  pthread_mutex_lock(&G.mu);
  if (!d->legacy && stream_new(cur_dev, &d->legacy))
    d->legacy = NULL;
  fake_stream_t *s = d->legacy;
  pthread_mutex_unlock(&G.mu);
  return s;
}

static cudaError_t enqueue(cudaStream_t stream, op_t proto) {
  fake_stream_t *s = resolve(stream);
  op_t *op = malloc(sizeof *op);
  if (!s || !op) {
    free(op);
    return fail(cudaErrorMemoryAllocation);
  }
  *op = proto;
  op->next = NULL;
  pthread_mutex_lock(&s->mu);
  if (s->tail)
    s->tail->next = op;
  else
    s->head = op;
  s->tail = op;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return cudaSuccess;
}

/* Queue an operation naming an event, which holds the event until it
 * has run. */
static cudaError_t enqueue_on_event(cudaStream_t stream, op_t proto) {
  pthread_mutex_lock(&proto.ev->mu);
  proto.ev->pending++;
  pthread_mutex_unlock(&proto.ev->mu);
  cudaError_t e = enqueue(stream, proto);
  if (e) {
    pthread_mutex_lock(&proto.ev->mu);
    event_unpend(proto.ev);
  }
  return e;
}

static void stream_drain(fake_stream_t *s) {
  pthread_mutex_lock(&s->mu);
  while (s->head)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static int stream_dev(cudaStream_t stream) {
  return stream ? ((fake_stream_t *)stream)->dev : cur_dev;
}

PUBLIC cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out,
                                             unsigned int flags) {
  cudaError_t e = usable(cur_dev);
  if (e)
    return e;
  if (!out)
    return fail(cudaErrorInvalidValue);
  fake_stream_t *s;
  if ((e = stream_new(cur_dev, &s)))
    return e;
  *out = (cudaStream_t)s;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaStreamCreate(cudaStream_t *out) {
  return cudaStreamCreateWithFlags(out, cudaStreamDefault);
}

static void stream_free(fake_stream_t *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
  atomic_fetch_sub(&G.nstreams, 1);
}

PUBLIC cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (!stream)
    return fail(cudaErrorInvalidResourceHandle);
  stream_free((fake_stream_t *)stream);
  return cudaSuccess;
}

PUBLIC cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  fake_stream_t *s = resolve(stream);
  if (s)
    stream_drain(s);
  return usable(stream_dev(stream));
}

PUBLIC cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event,
                                       unsigned int flags) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  if (!event)
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&event->mu);
  uint64_t gen = event->recorded;
  pthread_mutex_unlock(&event->mu);
  return enqueue_on_event(stream,
                          (op_t){.kind = OP_WAIT, .ev = event, .gen = gen});
}

/* {=== Device code ===} */

/* What nvcc's generated host code calls: a program holding device code
 * registers it at start and launches through these. The fake runs no
 * device code: a launch answers as a real runtime does for a card the
 * binary has no code for. */

PUBLIC void **__cudaRegisterFatBinary(void *fat_cubin);
PUBLIC void __cudaRegisterFatBinaryEnd(void **handle);
PUBLIC void __cudaUnregisterFatBinary(void **handle);
PUBLIC void __cudaRegisterFunction(void **handle, const char *host_fn,
                                   char *device_fn, const char *name,
                                   int thread_limit, uint3 *tid, uint3 *bid,
                                   dim3 *block, dim3 *grid, int *warp_size);
PUBLIC unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block,
                                            size_t shared, void *stream);
PUBLIC cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block,
                                              size_t *shared, void *stream);
PUBLIC cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *fn);
PUBLIC cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid,
                                      dim3 block, void **args, size_t shared,
                                      cudaStream_t stream);

static void *fat_handle;

PUBLIC void **__cudaRegisterFatBinary(void *fat_cubin) {
  (void)fat_cubin;
  return &fat_handle;
}

PUBLIC void __cudaRegisterFatBinaryEnd(void **handle) { (void)handle; }

PUBLIC void __cudaUnregisterFatBinary(void **handle) { (void)handle; }

PUBLIC void __cudaRegisterFunction(void **handle, const char *host_fn,
                                   char *device_fn, const char *name,
                                   int thread_limit, uint3 *tid, uint3 *bid,
                                   dim3 *block, dim3 *grid, int *warp_size) {
  (void)handle, (void)host_fn, (void)device_fn, (void)name;
  (void)thread_limit, (void)tid, (void)bid, (void)block, (void)grid;
  (void)warp_size;
}

static _Thread_local struct {
  dim3 grid, block;
  size_t shared;
  void *stream;
} launch_config;

PUBLIC unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block,
                                            size_t shared, void *stream) {
  launch_config.grid = grid;
  launch_config.block = block;
  launch_config.shared = shared;
  launch_config.stream = stream;
  return 0;
}

PUBLIC cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block,
                                              size_t *shared, void *stream) {
  *grid = launch_config.grid;
  *block = launch_config.block;
  *shared = launch_config.shared;
  *(void **)stream = launch_config.stream;
  return cudaSuccess;
}

PUBLIC cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *fn) {
  *kernel = (cudaKernel_t)(uintptr_t)fn;
  return cudaSuccess;
}

PUBLIC cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid,
                                      dim3 block, void **args, size_t shared,
                                      cudaStream_t stream) {
  (void)kernel, (void)grid, (void)block, (void)args, (void)shared;
  cudaError_t e = ready();
  return e ? e : fail(cudaErrorNoKernelImageForDevice);
}

PUBLIC cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn,
                                      void *userData) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  if (!fn)
    return fail(cudaErrorInvalidValue);
  atomic_fetch_add(&G.dev[stream_dev(stream)].n.hostfns, 1);
  return enqueue(stream, (op_t){.kind = OP_HOSTFN, .fn = fn, .ud = userData});
}

/* {=== Events ===} */

PUBLIC cudaError_t cudaEventCreateWithFlags(cudaEvent_t *out,
                                            unsigned int flags) {
  cudaError_t e = ready();
  if (e)
    return e;
  cudaEvent_t ev = out ? calloc(1, sizeof *ev) : NULL;
  if (!ev)
    return fail(out ? cudaErrorMemoryAllocation : cudaErrorInvalidValue);
  pthread_mutex_init(&ev->mu, NULL);
  pthread_cond_init(&ev->cv, NULL);
  ev->dev = ev->made_on = cur_dev;
  *out = ev;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaEventCreate(cudaEvent_t *out) {
  return cudaEventCreateWithFlags(out, cudaEventDefault);
}

PUBLIC cudaError_t cudaEventDestroy(cudaEvent_t ev) {
  if (!ev)
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&ev->mu);
  ev->destroyed = true;
  bool now = ev->pending == 0;
  pthread_mutex_unlock(&ev->mu);
  if (now)
    event_free(ev);
  return cudaSuccess;
}

PUBLIC cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t stream) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  /* An event belongs to the card current when it was made: the real
   * runtime refuses to record it on another card's stream. */
  if (!ev || ev->made_on != stream_dev(stream))
    return fail(cudaErrorInvalidResourceHandle);
  pthread_mutex_lock(&ev->mu);
  uint64_t gen = ++ev->recorded;
  ev->dev = stream_dev(stream);
  pthread_mutex_unlock(&ev->mu);
  return enqueue_on_event(stream,
                          (op_t){.kind = OP_RECORD, .ev = ev, .gen = gen});
}

PUBLIC cudaError_t cudaEventQuery(cudaEvent_t ev) {
  if (!ev)
    return fail(cudaErrorInvalidResourceHandle);
  cudaError_t e = usable(ev->dev);
  if (e)
    return e;
  pthread_mutex_lock(&ev->mu);
  bool done = ev->done >= ev->recorded;
  pthread_mutex_unlock(&ev->mu);
  return done ? cudaSuccess : cudaErrorNotReady;
}

PUBLIC cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
  if (!ev)
    return fail(cudaErrorInvalidResourceHandle);
  cudaError_t e = usable(ev->dev);
  if (e)
    return e;
  pthread_mutex_lock(&ev->mu);
  uint64_t gen = ev->recorded;
  while (!event_reached(ev, gen))
    pthread_cond_wait(&ev->cv, &ev->mu);
  pthread_mutex_unlock(&ev->mu);
  return usable(ev->dev);
}

/* {=== Devices ===} */

PUBLIC cudaError_t cudaGetDeviceCount(int *count) {
  cudaError_t e = ready();
  if (count)
    *count = e ? 0 : G.ndev;
  return e;
}

PUBLIC cudaError_t cudaSetDevice(int dev) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (dev < 0 || dev >= G.ndev)
    return fail(cudaErrorInvalidDevice);
  cur_dev = dev;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaGetDevice(int *dev) {
  cudaError_t e = ready();
  if (e)
    return e;
  *dev = cur_dev;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaDeviceSynchronize(void) {
  cudaError_t e = usable(cur_dev);
  if (!e && G.dev[cur_dev].legacy)
    stream_drain(G.dev[cur_dev].legacy);
  return e ? e : usable(cur_dev);
}

static void busid_of(int dev, char *buf, size_t len) {
  snprintf(buf, len, "0000:%02x:00.0", G.dev[dev].bus);
}

PUBLIC cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop,
                                           int dev) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (dev < 0 || dev >= G.ndev || !prop)
    return fail(dev < 0 || dev >= G.ndev ? cudaErrorInvalidDevice
                                         : cudaErrorInvalidValue);
  const preset_t *p = G.dev[dev].p;
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "%s", p->name);
  for (int i = 0; i < 16; i++)
    prop->uuid.bytes[i] = (char)(0x40 + 16 * dev + i);
  prop->totalGlobalMem = p->memory;
  prop->major = p->cc_major;
  prop->minor = p->cc_minor;
  prop->multiProcessorCount = p->sms;
  prop->memoryBusWidth = p->bus_width;
  prop->ECCEnabled = p->ecc;
  prop->pciBusID = (int)G.dev[dev].bus;
  prop->managedMemory = 1;
  prop->concurrentManagedAccess = 1;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr,
                                          int dev) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (dev < 0 || dev >= G.ndev)
    return fail(cudaErrorInvalidDevice);
  const preset_t *p = G.dev[dev].p;
  switch (attr) {
  case cudaDevAttrGlobalMemoryBusWidth:
    *value = p->bus_width;
    break;
  case cudaDevAttrMultiProcessorCount:
    *value = p->sms;
    break;
  case cudaDevAttrComputeCapabilityMajor:
    *value = p->cc_major;
    break;
  case cudaDevAttrComputeCapabilityMinor:
    *value = p->cc_minor;
    break;
  case cudaDevAttrEccEnabled:
    *value = p->ecc;
    break;
  case cudaDevAttrClockRate:
    *value = p->clock_khz;
    break;
  case cudaDevAttrMemoryClockRate:
    *value = p->mem_clock_khz;
    break;
  case cudaDevAttrPciBusId:
    *value = (int)G.dev[dev].bus;
    break;
  case cudaDevAttrPciDomainId:
  case cudaDevAttrPciDeviceId:
    *value = 0;
    break;
  case cudaDevAttrManagedMemory:
  case cudaDevAttrConcurrentManagedAccess:
  case cudaDevAttrMemoryPoolsSupported:
    *value = 1;
    break;
  default:
    return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

PUBLIC cudaError_t cudaDeviceGetPCIBusId(char *buf, int len, int dev) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (dev < 0 || dev >= G.ndev)
    return fail(cudaErrorInvalidDevice);
  if (!buf || len < 13)
    return fail(cudaErrorInvalidValue);
  busid_of(dev, buf, (size_t)len);
  return cudaSuccess;
}

PUBLIC cudaError_t cudaDeviceGetByPCIBusId(int *dev, const char *busid) {
  cudaError_t e = ready();
  if (e)
    return e;
  unsigned dom, bus, slot, fn;
  if (!busid || sscanf(busid, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
    return fail(cudaErrorInvalidValue);
  for (int d = 0; d < G.ndev; d++)
    if (dom == 0 && bus == G.dev[d].bus && slot == 0 && fn == 0) {
      *dev = d;
      return cudaSuccess;
    }
  return fail(cudaErrorInvalidDevice);
}

static bool same_kind(int a, int b) { return G.dev[a].p == G.dev[b].p; }

PUBLIC cudaError_t cudaDeviceCanAccessPeer(int *can, int dev, int peer) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (dev < 0 || dev >= G.ndev || peer < 0 || peer >= G.ndev)
    return fail(cudaErrorInvalidDevice);
  *can = dev != peer && same_kind(dev, peer);
  return cudaSuccess;
}

PUBLIC cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned int flags) {
  cudaError_t e = usable(cur_dev);
  if (e)
    return e;
  if (peer < 0 || peer >= G.ndev || peer == cur_dev ||
      !same_kind(cur_dev, peer))
    return fail(cudaErrorInvalidDevice);
  pthread_mutex_lock(&G.mu);
  bool was = G.dev[cur_dev].peer_enabled[peer];
  G.dev[cur_dev].peer_enabled[peer] = true;
  pthread_mutex_unlock(&G.mu);
  return was ? fail(cudaErrorPeerAccessAlreadyEnabled) : cudaSuccess;
}

PUBLIC cudaError_t cudaDriverGetVersion(int *v) {
  *v = ready() ? 0 : 13000;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaRuntimeGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}

/* {=== Memory ===} */

PUBLIC cudaError_t cudaMalloc(void **out, size_t size) {
  cudaError_t e = usable(cur_dev);
  if (e)
    return e;
  fake_dev_t *d = &G.dev[cur_dev];
  long oom = atomic_load(&d->oom);
  while (oom > 0 && !atomic_compare_exchange_weak(&d->oom, &oom, oom - 1))
    ;
  long limit = atomic_load(&d->memory_limit);
  pthread_mutex_lock(&G.mu);
  if (oom > 0 || d->used + size > (limit > 0 ? (size_t)limit : d->p->memory)) {
    pthread_mutex_unlock(&G.mu);
    return fail(cudaErrorMemoryAllocation);
  }
  size_t mapped = page_round(size);
  int fd = memfd_create("fakecuda", MFD_CLOEXEC);
  block_t *b = fd >= 0 && !ftruncate(fd, (off_t)mapped) ? add_block() : NULL;
  char *view = b ? mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                 : MAP_FAILED;
  char *addr = view != MAP_FAILED
                   ? mmap(NULL, mapped, PROT_NONE, MAP_SHARED, fd, 0)
                   : MAP_FAILED;
  if (fd >= 0)
    close(fd);
  if (addr == MAP_FAILED) {
    if (view != MAP_FAILED)
      munmap(view, mapped);
    if (b)
      drop_block(b);
    pthread_mutex_unlock(&G.mu);
    return fail(cudaErrorMemoryAllocation);
  }
  *b = (block_t){.addr = addr,
                 .view = view,
                 .size = size,
                 .mapped = mapped,
                 .dev = cur_dev,
                 .kind = BLOCK_DEVICE};
  d->used += size;
  pthread_mutex_unlock(&G.mu);
  atomic_fetch_add(&d->n.mallocs, 1);
  *out = addr;
  return cudaSuccess;
}

static cudaError_t free_kind(void *p, enum block_kind kind) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (!p)
    return cudaSuccess;
  pthread_mutex_lock(&G.mu);
  block_t *b = find_block(p);
  if (!b || b->addr != p || b->kind != kind) {
    pthread_mutex_unlock(&G.mu);
    return fail(cudaErrorInvalidValue);
  }
  block_t copy = *b;
  drop_block(b);
  if (kind == BLOCK_DEVICE)
    G.dev[copy.dev].used -= copy.size;
  pthread_mutex_unlock(&G.mu);
  if (kind == BLOCK_DEVICE) {
    munmap(copy.addr, copy.mapped);
    munmap(copy.view, copy.mapped);
    atomic_fetch_add(&G.dev[copy.dev].n.frees, 1);
  } else if (kind != BLOCK_REGISTERED) {
    munmap(copy.addr, copy.mapped);
  }
  return cudaSuccess;
}

PUBLIC cudaError_t cudaFree(void *p) {
  if (p) {
    where_t w;
    locate(p, 0, &w);
    if (w.kind == BLOCK_MANAGED)
      return free_kind(p, BLOCK_MANAGED);
    cudaError_t e = w.dev >= 0 ? usable(w.dev) : cudaSuccess;
    if (e) {
      /* A lost card's context is gone, and its memory with it: the block
       * is no more, though the call reports the card's error. */
      (void)free_kind(p, BLOCK_DEVICE);
      return e;
    }
  }
  return free_kind(p, BLOCK_DEVICE);
}

/* {=== The stream-ordered pool ===} */

/* Blocks from the pool are device blocks like cudaMalloc's; a free waits
 * for what the stream has queued before it, as the pool's reuse does. */
PUBLIC cudaError_t cudaMallocAsync(void **out, size_t size,
                                   cudaStream_t stream) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  if (stream_dev(stream) != cur_dev)
    return fail(cudaErrorInvalidValue); /* what this fake supports */
  if ((e = cudaMalloc(out, size)))
    return e;
  atomic_fetch_add(&G.dev[cur_dev].n.pool_allocs, 1);
  return cudaSuccess;
}

PUBLIC cudaError_t cudaFreeAsync(void *p, cudaStream_t stream) {
  cudaError_t e = usable(stream_dev(stream));
  fake_stream_t *s = resolve(stream);
  if (!e && s)
    stream_drain(s);
  return e ? (cudaFree(p), e) : cudaFree(p);
}

static uint64_t pool_threshold[MAX_DEVICES];

PUBLIC cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int dev) {
  cudaError_t e = usable(dev);
  if (e)
    return e;
  *pool = (cudaMemPool_t)&pool_threshold[dev];
  return cudaSuccess;
}

PUBLIC cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool,
                                           enum cudaMemPoolAttr attr,
                                           void *value) {
  if (!pool || !value)
    return fail(cudaErrorInvalidValue);
  if (attr == cudaMemPoolAttrReleaseThreshold)
    *(uint64_t *)pool = *(uint64_t *)value;
  return cudaSuccess;
}

/* Host memory the fake maps itself: pinned and managed blocks. */
static cudaError_t map_host(void **out, size_t size, enum block_kind kind) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (!out)
    return fail(cudaErrorInvalidValue);
  size_t mapped = page_round(size);
  char *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return fail(cudaErrorMemoryAllocation);
  pthread_mutex_lock(&G.mu);
  block_t *b = add_block();
  if (b)
    *b = (block_t){.addr = p,
                   .view = p,
                   .size = size,
                   .mapped = mapped,
                   .dev = -1,
                   .kind = kind};
  pthread_mutex_unlock(&G.mu);
  if (!b) {
    munmap(p, mapped);
    return fail(cudaErrorMemoryAllocation);
  }
  *out = p;
  return cudaSuccess;
}

PUBLIC cudaError_t cudaHostAlloc(void **out, size_t size, unsigned int flags) {
  return map_host(out, size, BLOCK_PINNED);
}

PUBLIC cudaError_t cudaMallocHost(void **out, size_t size) {
  return map_host(out, size, BLOCK_PINNED);
}

PUBLIC cudaError_t cudaFreeHost(void *p) { return free_kind(p, BLOCK_PINNED); }

PUBLIC cudaError_t cudaMallocManaged(void **out, size_t size,
                                     unsigned int flags) {
  cudaError_t e = usable(cur_dev);
  return e ? e : map_host(out, size, BLOCK_MANAGED);
}

PUBLIC cudaError_t cudaHostRegister(void *p, size_t size, unsigned int flags) {
  cudaError_t e = ready();
  if (e)
    return e;
  if (!p || !size)
    return fail(cudaErrorInvalidValue);
  pthread_mutex_lock(&G.mu);
  block_t *b = find_block(p) ? NULL : add_block();
  if (b)
    *b = (block_t){.addr = p,
                   .view = p,
                   .size = size,
                   .dev = -1,
                   .kind = BLOCK_REGISTERED};
  pthread_mutex_unlock(&G.mu);
  return b ? cudaSuccess : fail(cudaErrorHostMemoryAlreadyRegistered);
}

PUBLIC cudaError_t cudaHostUnregister(void *p) {
  return free_kind(p, BLOCK_REGISTERED) ? fail(cudaErrorHostMemoryNotRegistered)
                                        : cudaSuccess;
}

PUBLIC cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  cudaError_t e = usable(cur_dev);
  if (e)
    return e;
  pthread_mutex_lock(&G.mu);
  *total = G.dev[cur_dev].p->memory;
  *free_bytes = *total - G.dev[cur_dev].used;
  pthread_mutex_unlock(&G.mu);
  return cudaSuccess;
}

PUBLIC cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a,
                                            const void *p) {
  cudaError_t e = ready();
  if (e)
    return e;
  where_t w;
  bool known = locate(p, 0, &w);
  pthread_mutex_lock(&G.mu);
  bool registered = find_block(p) != NULL;
  pthread_mutex_unlock(&G.mu);
  memset(a, 0, sizeof *a);
  a->device = w.dev >= 0 ? w.dev : 0;
  if (!known || !registered) {
    a->type = cudaMemoryTypeUnregistered;
  } else if (w.kind == BLOCK_DEVICE) {
    a->type = cudaMemoryTypeDevice;
    a->devicePointer = (void *)p;
  } else {
    a->type =
        w.kind == BLOCK_MANAGED ? cudaMemoryTypeManaged : cudaMemoryTypeHost;
    a->devicePointer = a->hostPointer = (void *)p;
  }
  return cudaSuccess;
}

/* {=== Copies ===} */

static bool take_failure(int dev) {
  atomic_long *n = &G.dev[dev].copy_fail;
  long left = atomic_load(n);
  while (left > 0 && !atomic_compare_exchange_weak(n, &left, left - 1))
    ;
  return left > 0;
}

PUBLIC cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count,
                                   enum cudaMemcpyKind kind,
                                   cudaStream_t stream) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  where_t dw, sw;
  if (!locate(dst, count, &dw) || !locate(src, count, &sw))
    return fail(cudaErrorInvalidValue);
  /* The direction must match the pointers, as the real one checks. */
  bool dst_dev = dw.kind == BLOCK_DEVICE, src_dev = sw.kind == BLOCK_DEVICE;
  if ((kind == cudaMemcpyHostToDevice && (!dst_dev || src_dev)) ||
      (kind == cudaMemcpyDeviceToHost && (dst_dev || !src_dev)) ||
      (kind == cudaMemcpyDeviceToDevice && (!dst_dev || !src_dev)))
    return fail(cudaErrorInvalidValue);
  int card = dst_dev ? dw.dev : src_dev ? sw.dev : stream_dev(stream);
  if ((e = usable(card)))
    return e;
  if (take_failure(card))
    return fail(cudaErrorUnknown);
  fake_dev_t *d = &G.dev[card];
  if (dst_dev && src_dev)
    atomic_fetch_add(dw.dev == sw.dev ? &d->n.d2d : &d->n.peer_staged, 1);
  else if (dst_dev)
    atomic_fetch_add(&d->n.h2d, 1);
  else if (src_dev)
    atomic_fetch_add(&d->n.d2h, 1);
  if ((dst_dev && !src_dev && !sw.pinned) ||
      (src_dev && !dst_dev && !dw.pinned))
    atomic_fetch_add(&d->n.pageable, 1);
  return enqueue(stream,
                 (op_t){.kind = OP_COPY, .dst = dst, .src = src, .n = count});
}

PUBLIC cudaError_t cudaMemcpy(void *dst, const void *src, size_t count,
                              enum cudaMemcpyKind kind) {
  cudaError_t e = cudaMemcpyAsync(dst, src, count, kind, NULL);
  return e ? e : cudaStreamSynchronize(NULL);
}

PUBLIC cudaError_t cudaMemcpyPeerAsync(void *dst, int dstDevice,
                                       const void *src, int srcDevice,
                                       size_t count, cudaStream_t stream) {
  cudaError_t e = usable(dstDevice);
  if (!e)
    e = usable(srcDevice);
  if (e)
    return e;
  where_t dw, sw;
  if (!locate(dst, count, &dw) || !locate(src, count, &sw) ||
      dw.dev != dstDevice || sw.dev != srcDevice)
    return fail(cudaErrorInvalidValue);
  if (take_failure(dstDevice))
    return fail(cudaErrorUnknown);
  fake_dev_t *d = &G.dev[dstDevice];
  pthread_mutex_lock(&G.mu);
  bool direct = dstDevice == srcDevice || d->peer_enabled[srcDevice] ||
                G.dev[srcDevice].peer_enabled[dstDevice];
  pthread_mutex_unlock(&G.mu);
  atomic_fetch_add(dstDevice == srcDevice ? &d->n.d2d
                   : direct               ? &d->n.peer_direct
                                          : &d->n.peer_staged,
                   1);
  return enqueue(stream,
                 (op_t){.kind = OP_COPY, .dst = dst, .src = src, .n = count});
}

PUBLIC cudaError_t cudaMemPrefetchAsync(const void *p, size_t count,
                                        struct cudaMemLocation loc,
                                        unsigned int flags,
                                        cudaStream_t stream) {
  cudaError_t e = usable(stream_dev(stream));
  if (e)
    return e;
  where_t w;
  if (!locate(p, count, &w) || w.kind != BLOCK_MANAGED)
    return fail(cudaErrorInvalidValue);
  int to = loc.type == cudaMemLocationTypeDevice ? loc.id : -1;
  if (to >= G.ndev)
    return fail(cudaErrorInvalidDevice);
  if (to >= 0)
    atomic_fetch_add(&G.dev[to].n.prefetches, 1);
  return enqueue(stream, (op_t){.kind = OP_PREFETCH, .src = p, .loc = to});
}

/* {=== Errors ===} */

PUBLIC cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

PUBLIC cudaError_t cudaPeekAtLastError(void) { return last_error; }

static const struct {
  cudaError_t e;
  const char *name, *text;
} ERRORS[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
     "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice",
     "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice",
     "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle",
     "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
     "an illegal memory access was encountered"},
    {cudaErrorPeerAccessAlreadyEnabled, "cudaErrorPeerAccessAlreadyEnabled",
     "peer access is already enabled"},
    {cudaErrorHostMemoryAlreadyRegistered,
     "cudaErrorHostMemoryAlreadyRegistered",
     "part or all of the requested memory range is already mapped"},
    {cudaErrorHostMemoryNotRegistered, "cudaErrorHostMemoryNotRegistered",
     "pointer does not correspond to a registered memory region"},
    {cudaErrorNoKernelImageForDevice, "cudaErrorNoKernelImageForDevice",
     "no kernel image is available for execution on the device"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

PUBLIC const char *cudaGetErrorName(cudaError_t e) {
  for (size_t i = 0; i < sizeof ERRORS / sizeof *ERRORS; i++)
    if (ERRORS[i].e == e)
      return ERRORS[i].name;
  return "cudaErrorUnknown";
}

PUBLIC const char *cudaGetErrorString(cudaError_t e) {
  for (size_t i = 0; i < sizeof ERRORS / sizeof *ERRORS; i++)
    if (ERRORS[i].e == e)
      return ERRORS[i].text;
  return "unrecognized error code";
}

/* {=== Test controls ===} */

PUBLIC int fakecuda_stats(int dev, fakecuda_stats_t *out) {
  if (ready() || dev < 0 || dev >= G.ndev)
    return -1;
  fake_dev_t *d = &G.dev[dev];
  *out = (fakecuda_stats_t){.h2d = atomic_load(&d->n.h2d),
                            .d2h = atomic_load(&d->n.d2h),
                            .d2d = atomic_load(&d->n.d2d),
                            .peer_direct = atomic_load(&d->n.peer_direct),
                            .peer_staged = atomic_load(&d->n.peer_staged),
                            .pageable = atomic_load(&d->n.pageable),
                            .hostfns = atomic_load(&d->n.hostfns),
                            .prefetches = atomic_load(&d->n.prefetches),
                            .mallocs = atomic_load(&d->n.mallocs),
                            .pool_allocs = atomic_load(&d->n.pool_allocs),
                            .frees = atomic_load(&d->n.frees),
                            .max_streams_busy = atomic_load(&d->n.max_busy)};
  pthread_mutex_lock(&G.mu);
  out->bytes_live = d->used;
  for (int p = 0; p < G.ndev; p++)
    out->peer_enabled += d->peer_enabled[p];
  pthread_mutex_unlock(&G.mu);
  return 0;
}

PUBLIC int fakecuda_inject(int dev, const char *fault, long n) {
  if (ready() || dev < 0 || dev >= G.ndev || !fault || n < 0)
    return -1;
  fake_dev_t *d = &G.dev[dev];
  if (!strcmp(fault, "copy_fail"))
    atomic_store(&d->copy_fail, n);
  else if (!strcmp(fault, "oom"))
    atomic_store(&d->oom, n);
  else if (!strcmp(fault, "memory_limit"))
    atomic_store(&d->memory_limit, n);
  else if (!strcmp(fault, "op_delay_us"))
    atomic_store(&d->op_delay_us, n);
  else if (!strcmp(fault, "sticky") && n == 0)
    atomic_store(&d->sticky, cudaErrorIllegalAddress);
  else if (!strcmp(fault, "sticky"))
    atomic_store(&d->sticky_after, n);
  else
    return -1;
  return 0;
}

PUBLIC int fakecuda_reset(void) {
  pthread_mutex_lock(&G.mu);
  fake_stream_t *legacy[MAX_DEVICES] = {0};
  for (int d = 0; d < G.ndev; d++) {
    legacy[d] = G.dev[d].legacy;
    G.dev[d].legacy = NULL;
  }
  pthread_mutex_unlock(&G.mu);
  for (int d = 0; d < MAX_DEVICES; d++)
    if (legacy[d])
      stream_free(legacy[d]);
  pthread_mutex_lock(&G.mu);
  bool busy = G.nblocks || atomic_load(&G.nstreams);
  if (!busy) {
    memset(G.dev, 0, sizeof G.dev);
    G.ndev = 0;
    G.init_error = cudaSuccess;
    read_devices();
    atomic_store(&G.inited, true);
  }
  pthread_mutex_unlock(&G.mu);
  return busy ? -1 : 0;
}
