/* zkload: closed-loop ZooKeeper load generator on the libzookeeper_mt async API.
 *
 * Each client is one zhandle; it keeps --inflight requests outstanding, and
 * every completion immediately submits the next request (from the handle's
 * completion thread).  Latency = CLOCK_MONOTONIC at completion minus at submit,
 * recorded in a log-linear histogram (~1.6% resolution) per client, so memory is
 * bounded and recording needs no lock (one completion thread per handle).
 *
 * Extra modes used by zk-anchor.sh:
 *   --op ready     retry connect+exists("/") until it succeeds; print elapsed ms
 *   --op failover  --kill-pid P: check a write works, SIGKILL P, then retry
 *                  writes until one succeeds; print the outage in ms
 */
#define _GNU_SOURCE
#include <zookeeper/zookeeper.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define ZKLOAD_VERSION "1.1"
#define SUB_BITS 6
#define SUB_COUNT (1 << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT)
#define MAX_RC 128 /* error codes are small negatives */

enum op { OP_GET, OP_SET, OP_CREATE, OP_EXISTS, OP_MIXED, OP_READY, OP_FAILOVER, OP_CREATEDEL, OP_DELETE };
/* OP_DELETE is never chosen by the user: it is what a createdelete slot sends when its node exists. */
static const char *op_names[] = {"get", "set", "create", "exists", "mixed", "ready", "failover", "createdelete"};
enum kind { K_READ, K_WRITE };

static struct {
    const char *hosts, *json;
    int clients, inflight, keys, size, read_pct, session_ms, connect_ms, quiet, raw;
    double seconds, warmup;
    enum op op;
    pid_t kill_pid;
} cfg = {"127.0.0.1:2181", NULL, 1, 1, 1024, 100, 90, 30000, 10000, 0, 0, 10, 1, OP_GET, 0};

typedef struct {
    uint64_t count[2], hist[2][NBUCKETS], errors, err_rc[MAX_RC];
} stats_t;

struct client;
typedef struct slot {
    struct client *c;
    int id, is_write, live; /* live: createdelete slot's node exists (next request deletes it) */
    uint64_t rng, created, t_submit;
    char path[128];
} slot_t;

typedef struct client {
    int id;
    zhandle_t *zh;
    slot_t *slots;
    stats_t st;
    atomic_int outstanding;
} client_t;

static client_t *clients;
static char parent[64];
static char *payload;
static atomic_int stop_flag;
static uint64_t t_measure_start, t_measure_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
static void sleep_ms(int ms) { usleep(ms * 1000); }

static int bucket_of(uint64_t v) {
    if (v < SUB_COUNT) return (int)v;
    int msb = 63 - __builtin_clzll(v), shift = msb - SUB_BITS;
    return (shift + 1) * SUB_COUNT + (int)((v >> shift) & (SUB_COUNT - 1));
}
static double bucket_mid(int b) {
    if (b < SUB_COUNT) return b;
    int shift = b / SUB_COUNT - 1, sub = b % SUB_COUNT;
    double lo = (double)((uint64_t)(SUB_COUNT + sub) << shift);
    return lo + ((1ull << shift) - 1) / 2.0;
}
static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

/* ---------------- connection ---------------- */
static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)type; (void)state; (void)path; (void)ctx;
}
static zhandle_t *connect_one(const char *hosts, int timeout_ms) {
    zhandle_t *zh = zookeeper_init(hosts, watcher, cfg.session_ms, NULL, NULL, 0);
    if (!zh) return NULL;
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (zoo_state(zh) != ZOO_CONNECTED_STATE) {
        if (now_ns() > deadline) { zookeeper_close(zh); return NULL; }
        usleep(500);
    }
    return zh;
}

/* ---------------- simple windowed batch (setup/cleanup) ---------------- */
static pthread_mutex_t bmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bcv = PTHREAD_COND_INITIALIZER;
static int b_out, b_err;
static void b_done(int rc, int ok_alt) {
    pthread_mutex_lock(&bmu);
    if (rc != ZOK && rc != ok_alt) b_err++;
    b_out--;
    pthread_cond_signal(&bcv);
    pthread_mutex_unlock(&bmu);
}
static void b_str_cb(int rc, const char *v, const void *d) { (void)v; b_done(rc, (int)(intptr_t)d); }
static void b_void_cb(int rc, const void *d) { b_done(rc, (int)(intptr_t)d); }
static void b_wait(int max_out) {
    pthread_mutex_lock(&bmu);
    while (b_out > max_out) pthread_cond_wait(&bcv, &bmu);
    pthread_mutex_unlock(&bmu);
}
static void b_inc(void) { pthread_mutex_lock(&bmu); b_out++; pthread_mutex_unlock(&bmu); }

/* ---------------- load ---------------- */
static void submit(slot_t *s);

/* createdelete: each slot owns one path and alternates create and delete of it, so the
 * tree stays small however long the run. A reply flips the slot's state; "node exists"
 * to a create and "no node" to a delete also tell the state (and count as errors). */
static void cd_done(slot_t *s, int rc) {
    if (!s->live && (rc == ZOK || rc == ZNODEEXISTS)) s->live = 1;
    else if (s->live && (rc == ZOK || rc == ZNONODE)) s->live = 0;
}
/* the op a slot sends next, and its path */
static enum op slot_op(slot_t *s, uint64_t r) {
    enum op op = cfg.op;
    if (op == OP_MIXED) op = (int)(r % 100) < cfg.read_pct ? OP_GET : OP_SET;
    if (op == OP_CREATEDEL) {
        op = s->live ? OP_DELETE : OP_CREATE;
        snprintf(s->path, sizeof s->path, "%s/c/%d-%d", parent, s->c->id, s->id);
    } else if (op == OP_CREATE)
        snprintf(s->path, sizeof s->path, "%s/c/%d-%d-%llu", parent, s->c->id, s->id,
                 (unsigned long long)s->created);
    else
        snprintf(s->path, sizeof s->path, "%s/k%llu", parent, (unsigned long long)((r >> 8) % cfg.keys));
    s->is_write = (op == OP_SET || op == OP_CREATE || op == OP_DELETE);
    return op;
}

static void complete(slot_t *s, int rc) {
    client_t *c = s->c;
    uint64_t t = now_ns();
    if (s->t_submit >= t_measure_start && t <= t_measure_end) {
        if (rc == ZOK) {
            c->st.count[s->is_write]++;
            c->st.hist[s->is_write][bucket_of(t - s->t_submit)]++;
        } else {
            c->st.errors++;
            c->st.err_rc[(-rc) % MAX_RC]++;
        }
    } else if (rc != ZOK && t <= t_measure_end) {
        c->st.errors++;
        c->st.err_rc[(-rc) % MAX_RC]++;
    }
    if (rc == ZOK && s->is_write && cfg.op == OP_CREATE) s->created++;
    if (cfg.op == OP_CREATEDEL) cd_done(s, rc);
    if (atomic_load(&stop_flag) || t > t_measure_end) { atomic_fetch_sub(&c->outstanding, 1); return; }
    submit(s);
}
static void data_cb(int rc, const char *v, int vl, const struct Stat *st, const void *d) {
    (void)v; (void)vl; (void)st; complete((slot_t *)d, rc);
}
static void stat_cb(int rc, const struct Stat *st, const void *d) { (void)st; complete((slot_t *)d, rc); }
static void str_cb(int rc, const char *v, const void *d) { (void)v; complete((slot_t *)d, rc); }
static void void_cb(int rc, const void *d) { complete((slot_t *)d, rc); }

static void submit(slot_t *s) {
    client_t *c = s->c;
    enum op op = slot_op(s, xorshift(&s->rng));
    int rc;
    s->t_submit = now_ns();
    switch (op) {
    case OP_GET: rc = zoo_aget(c->zh, s->path, 0, data_cb, s); break;
    case OP_EXISTS: rc = zoo_aexists(c->zh, s->path, 0, stat_cb, s); break;
    case OP_SET: rc = zoo_aset(c->zh, s->path, payload, cfg.size, -1, stat_cb, s); break;
    case OP_DELETE: rc = zoo_adelete(c->zh, s->path, -1, void_cb, s); break;
    default: rc = zoo_acreate(c->zh, s->path, payload, cfg.size, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, str_cb, s);
    }
    if (rc != ZOK) { /* synchronous failure (e.g. connection gone): this slot stops */
        c->st.errors++;
        c->st.err_rc[(-rc) % MAX_RC]++;
        atomic_fetch_sub(&c->outstanding, 1);
    }
}

static double pct(uint64_t *h, uint64_t n, double p) {
    if (!n) return 0;
    uint64_t target = (uint64_t)(p * (double)n + 0.5), acc = 0;
    if (target < 1) target = 1;
    for (int b = 0; b < NBUCKETS; b++) {
        acc += h[b];
        if (acc >= target) return bucket_mid(b) / 1000.0; /* us */
    }
    return 0;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int raw_load(void);
static int run_load(void) {
    int rc = 0;
    clients = calloc(cfg.clients, sizeof *clients);
    payload = malloc(cfg.size + 1);
    memset(payload, 'x', cfg.size);
    for (int i = 0; i < cfg.clients; i++) {
        clients[i].id = i;
        clients[i].zh = connect_one(cfg.hosts, cfg.connect_ms);
        if (!clients[i].zh) {
            fprintf(stderr, "zkload: cannot connect client %d to %s within %d ms\n", i, cfg.hosts, cfg.connect_ms);
            for (int j = 0; j < i; j++) zookeeper_close(clients[j].zh);
            return 2;
        }
    }
    zhandle_t *z0 = clients[0].zh;
    snprintf(parent, sizeof parent, "/zkload-%d-%llu", (int)getpid(), (unsigned long long)(now_ns() % 1000000));
    char buf[128];
    if ((rc = zoo_create(z0, parent, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0)) != ZOK) {
        fprintf(stderr, "zkload: create %s: %s\n", parent, zerror(rc));
        return 3;
    }
    snprintf(buf, sizeof buf, "%s/c", parent);
    zoo_create(z0, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
    int nkeys = (cfg.op == OP_CREATE || cfg.op == OP_CREATEDEL) ? 0 : cfg.keys;
    for (int k = 0; k < nkeys; k++) { /* pipelined pre-create */
        static char kp[128];
        snprintf(kp, sizeof kp, "%s/k%d", parent, k);
        b_inc();
        if (zoo_acreate(z0, kp, payload, cfg.size, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, b_str_cb, (void *)(intptr_t)ZOK) != ZOK) b_done(-1, ZOK);
        b_wait(256);
    }
    b_wait(0);
    if (b_err) { fprintf(stderr, "zkload: %d pre-create errors\n", b_err); return 3; }
    for (int i = 0; i < cfg.clients; i++) { /* make every server the clients use see the keys */
        b_inc();
        if (zoo_async(clients[i].zh, parent, b_str_cb, (void *)(intptr_t)ZOK) != ZOK) b_done(-1, ZOK);
    }
    b_wait(0);

    uint64_t t0 = now_ns();
    t_measure_start = t0 + (uint64_t)(cfg.warmup * 1e9);
    t_measure_end = t_measure_start + (uint64_t)(cfg.seconds * 1e9);
    double cpu0 = cpu_s();
    for (int i = 0; i < cfg.clients; i++) {
        client_t *c = &clients[i];
        c->slots = calloc(cfg.inflight, sizeof(slot_t));
        atomic_store(&c->outstanding, cfg.inflight);
        for (int j = 0; j < cfg.inflight; j++) {
            c->slots[j].c = c;
            c->slots[j].id = j;
            c->slots[j].rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(i + 1) << 32) ^ (uint64_t)(j + 1) * 0x2545F4914F6CDD1Dull;
        }
    }
    if (cfg.raw) {
        if ((rc = raw_load()) == 2) return 2;
    } else {
        for (int j = 0; j < cfg.inflight; j++)
            for (int i = 0; i < cfg.clients; i++) submit(&clients[i].slots[j]);
        while (now_ns() < t_measure_end) sleep_ms(5);
    }
    atomic_store(&stop_flag, 1);
    uint64_t drain_deadline = now_ns() + 10000000000ull;
    int stuck = 0;
    for (int i = 0; i < cfg.clients; i++)
        while (atomic_load(&clients[i].outstanding) > 0) {
            if (now_ns() > drain_deadline) { stuck = 1; break; }
            sleep_ms(1);
        }
    double cpu_used = cpu_s() - cpu0;
    double wall = (now_ns() - t0) / 1e9;

    /* aggregate */
    static stats_t tot;
    for (int i = 0; i < cfg.clients; i++) {
        stats_t *s = &clients[i].st;
        for (int k = 0; k < 2; k++) {
            tot.count[k] += s->count[k];
            for (int b = 0; b < NBUCKETS; b++) tot.hist[k][b] += s->hist[k][b];
        }
        tot.errors += s->errors;
        for (int e = 0; e < MAX_RC; e++) tot.err_rc[e] += s->err_rc[e];
    }
    static uint64_t all[NBUCKETS];
    for (int b = 0; b < NBUCKETS; b++) all[b] = tot.hist[0][b] + tot.hist[1][b];
    uint64_t n = tot.count[0] + tot.count[1];
    double ops = n / cfg.seconds;
    double p50 = pct(all, n, 0.50), p99 = pct(all, n, 0.99), p999 = pct(all, n, 0.999);
    double mx = 0;
    for (int b = NBUCKETS - 1; b >= 0; b--) if (all[b]) { mx = bucket_mid(b) / 1000.0; break; }

    /* cleanup: delete everything we made, pipelined */
    uint64_t tc = now_ns();
    long ndel = 0;
    b_err = 0;
    for (int i = 0; i < cfg.clients && cfg.op == OP_CREATE; i++)
        for (int j = 0; j < cfg.inflight; j++)
            for (uint64_t m = 0; m < clients[i].slots[j].created; m++) {
                static char dp[128];
                snprintf(dp, sizeof dp, "%s/c/%d-%d-%llu", parent, i, j, (unsigned long long)m);
                b_inc(); ndel++;
                if (zoo_adelete(z0, dp, -1, b_void_cb, (void *)(intptr_t)ZNONODE) != ZOK) b_done(-1, ZOK);
                b_wait(512);
            }
    for (int i = 0; i < cfg.clients && cfg.op == OP_CREATEDEL; i++)
        for (int j = 0; j < cfg.inflight; j++) {
            slot_t *s = &clients[i].slots[j];
            if (!s->live) continue;
            b_inc(); ndel++;
            if (zoo_adelete(z0, s->path, -1, b_void_cb, (void *)(intptr_t)ZNONODE) != ZOK) b_done(-1, ZOK);
            b_wait(512);
        }
    for (int k = 0; k < nkeys; k++) {
        static char dp[128];
        snprintf(dp, sizeof dp, "%s/k%d", parent, k);
        b_inc(); ndel++;
        if (zoo_adelete(z0, dp, -1, b_void_cb, (void *)(intptr_t)ZNONODE) != ZOK) b_done(-1, ZOK);
        b_wait(512);
    }
    b_wait(0);
    zoo_delete(z0, buf, -1);
    int drc = zoo_delete(z0, parent, -1);
    double cleanup_s = (now_ns() - tc) / 1e9;
    if (drc != ZOK) fprintf(stderr, "zkload: cleanup of %s failed: %s (%d child delete errors)\n", parent, zerror(drc), b_err);
    for (int i = 0; i < cfg.clients; i++) zookeeper_close(clients[i].zh);

    char errs[1024] = "";
    for (int e = 0; e < MAX_RC; e++)
        if (tot.err_rc[e]) {
            size_t l = strlen(errs);
            snprintf(errs + l, sizeof errs - l, "%s\"%d\":%llu", l ? "," : "", -e, (unsigned long long)tot.err_rc[e]);
        }
    printf("zkload %s engine=%s op=%s clients=%d inflight=%d size=%d: %.0f ops/s, p50 %.0f us, p99 %.0f us, p999 %.0f us, max %.0f us, errors %llu, zkload cpu %.0f%% of one core\n",
           ZKLOAD_VERSION, cfg.raw ? "raw" : "mt", op_names[cfg.op], cfg.clients, cfg.inflight, cfg.size, ops, p50, p99, p999, mx,
           (unsigned long long)tot.errors, 100.0 * cpu_used / wall);
    if (cfg.json) {
        FILE *f = strcmp(cfg.json, "-") ? fopen(cfg.json, "w") : stdout;
        if (!f) { perror(cfg.json); return 4; }
        fprintf(f, "{\"tool\":\"zkload\",\"version\":\"%s\",\"engine\":\"%s\",\"hosts\":\"%s\",\"op\":\"%s\",\"clients\":%d,\"inflight\":%d,"
                   "\"size\":%d,\"keys\":%d,\"read_pct\":%d,\"seconds\":%.3f,\"warmup\":%.3f,"
                   "\"ops\":%llu,\"ops_per_sec\":%.1f,\"reads\":%llu,\"writes\":%llu,"
                   "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
                   "\"read_latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f},"
                   "\"write_latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f},"
                   "\"errors\":%llu,\"errors_by_rc\":{%s},\"zkload_cpu_s\":%.3f,\"zkload_cpu_pct_of_core\":%.1f,"
                   "\"cleanup_s\":%.3f,\"deleted\":%ld,\"drain_stuck\":%s}\n",
                ZKLOAD_VERSION, cfg.raw ? "raw" : "mt", cfg.hosts, op_names[cfg.op], cfg.clients, cfg.inflight, cfg.size, cfg.keys,
                cfg.read_pct, cfg.seconds, cfg.warmup, (unsigned long long)n, ops,
                (unsigned long long)tot.count[0], (unsigned long long)tot.count[1], p50, pct(all, n, 0.90), p99, p999, mx,
                pct(tot.hist[0], tot.count[0], .5), pct(tot.hist[0], tot.count[0], .99), pct(tot.hist[0], tot.count[0], .999),
                pct(tot.hist[1], tot.count[1], .5), pct(tot.hist[1], tot.count[1], .99), pct(tot.hist[1], tot.count[1], .999),
                (unsigned long long)tot.errors, errs, cpu_used, 100.0 * cpu_used / wall, cleanup_s, ndel,
                stuck ? "true" : "false");
        if (f != stdout) fclose(f);
    }
    return stuck ? 5 : 0;
}


/* ---------------- raw engine: one epoll thread speaking jute directly ----------------
 * Optional (--engine raw). Same closed loop and slots, but requests are encoded here,
 * batched per connection into one send() per loop pass, and replies parsed in bulk,
 * so the client costs a few us per op instead of tens (the mt library does a pipe
 * write, a poll/recv round and a thread hand-off per request). ZooKeeper answers a
 * connection's requests in order, so a FIFO of slots maps replies to requests. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

typedef struct {
    int fd, xid, want_out;
    char *in, *out;
    size_t in_len, out_len, out_off, cap;
    slot_t **fifo;
    int fhead, ftail, fcount, closing;
} rconn_t;

static void put32(rconn_t *r, int32_t v) { uint32_t x = htonl((uint32_t)v); memcpy(r->out + r->out_len, &x, 4); r->out_len += 4; }
static void put64(rconn_t *r, int64_t v) { put32(r, (int32_t)((uint64_t)v >> 32)); put32(r, (int32_t)(v & 0xffffffff)); }
static void putbuf(rconn_t *r, const char *b, int n) { put32(r, n); if (n > 0) { memcpy(r->out + r->out_len, b, n); r->out_len += n; } }
static int32_t get32(const char *p) { uint32_t x; memcpy(&x, p, 4); return (int32_t)ntohl(x); }

static int raw_dial(const char *hostport) {
    char host[64]; int port;
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon - hostport >= (int)sizeof host) return -1;
    memcpy(host, hostport, colon - hostport); host[colon - hostport] = 0; port = atoi(colon + 1);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { if (fd >= 0) close(fd); return -1; }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}
static int read_full(int fd, char *b, size_t n) {
    size_t got = 0;
    while (got < n) { ssize_t k = read(fd, b + got, n - got); if (k <= 0) return -1; got += k; }
    return 0;
}
/* blocking handshake: ConnectRequest{protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly} */
static int raw_handshake(rconn_t *r) {
    r->out_len = 0;
    put32(r, 45); put32(r, 0); put64(r, 0); put32(r, cfg.session_ms); put64(r, 0);
    put32(r, 16); memset(r->out + r->out_len, 0, 16); r->out_len += 16; r->out[r->out_len++] = 0;
    if (write(r->fd, r->out, r->out_len) != (ssize_t)r->out_len) return -1;
    r->out_len = 0;
    char lenb[4], body[256];
    if (read_full(r->fd, lenb, 4)) return -1;
    int32_t n = get32(lenb);
    if (n < 20 || n > (int)sizeof body || read_full(r->fd, body, n)) return -1;
    return get32(body + 4) > 0 ? 0 : -1; /* negotiated timeout 0 = session refused */
}

static void raw_encode(rconn_t *r, slot_t *s) {
    enum op op = slot_op(s, xorshift(&s->rng));
    int plen = (int)strlen(s->path);
    size_t start = r->out_len;
    put32(r, 0); /* length, patched below */
    put32(r, ++r->xid);
    switch (op) {
    case OP_GET: case OP_EXISTS:
        put32(r, op == OP_GET ? 4 : 3); putbuf(r, s->path, plen); r->out[r->out_len++] = 0; break;
    case OP_SET:
        put32(r, 5); putbuf(r, s->path, plen); putbuf(r, payload, cfg.size); put32(r, -1); break;
    case OP_DELETE:
        put32(r, 2); putbuf(r, s->path, plen); put32(r, -1); break;
    default: /* create, world:anyone ALL, persistent */
        put32(r, 1); putbuf(r, s->path, plen); putbuf(r, payload, cfg.size);
        put32(r, 1); put32(r, 31); putbuf(r, "world", 5); putbuf(r, "anyone", 6); put32(r, 0);
    }
    uint32_t len = htonl((uint32_t)(r->out_len - start - 4));
    memcpy(r->out + start, &len, 4);
    r->fifo[r->ftail] = s; r->ftail = (r->ftail + 1) % cfg.inflight; r->fcount++;
    s->t_submit = now_ns();
}
static void raw_close_session(rconn_t *r) { put32(r, 8); put32(r, ++r->xid); put32(r, -11); }

static int raw_flush(rconn_t *r, int ep) {
    while (r->out_off < r->out_len) {
        ssize_t k = send(r->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno != EAGAIN) return -1;
            if (!r->want_out) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = r};
                epoll_ctl(ep, EPOLL_CTL_MOD, r->fd, &ev); r->want_out = 1;
            }
            return 0;
        }
        r->out_off += k;
    }
    r->out_off = r->out_len = 0;
    if (r->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
        epoll_ctl(ep, EPOLL_CTL_MOD, r->fd, &ev); r->want_out = 0;
    }
    return 0;
}

static int raw_load(void) {
    char *hl = strdup(cfg.hosts), *save = NULL, *hosts[64]; int nh = 0;
    for (char *t = strtok_r(hl, ",", &save); t && nh < 64; t = strtok_r(NULL, ",", &save)) hosts[nh++] = t;
    int ep = epoll_create1(0);
    rconn_t *rc = calloc(cfg.clients, sizeof *rc);
    size_t per = 64 + 128 + (size_t)cfg.size + 64;
    for (int i = 0; i < cfg.clients; i++) {
        rconn_t *r = &rc[i];
        r->cap = per * cfg.inflight + 4096;
        if (r->cap < (1 << 20) + 4096) r->cap = (1 << 20) + 4096;
        r->in = malloc(r->cap); r->out = malloc(r->cap);
        r->fifo = calloc(cfg.inflight, sizeof(slot_t *));
        r->fd = raw_dial(hosts[(i + getpid()) % nh]);
        if (r->fd < 0 || raw_handshake(r)) { fprintf(stderr, "zkload: raw connect %d failed\n", i); return 2; }
        fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
        epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev);
    }
    for (int i = 0; i < cfg.clients; i++) {
        for (int j = 0; j < cfg.inflight; j++) raw_encode(&rc[i], &clients[i].slots[j]);
        raw_flush(&rc[i], ep);
    }
    struct epoll_event evs[64];
    int outstanding = cfg.clients * cfg.inflight, failed = 0;
    uint64_t drain_deadline = 0;
    while (outstanding > 0) {
        int n = epoll_wait(ep, evs, 64, 5);
        uint64_t tnow = now_ns();
        if (tnow > t_measure_end && !drain_deadline) drain_deadline = tnow + 10000000000ull;
        if (drain_deadline && tnow > drain_deadline) break;
        for (int e = 0; e < n; e++) {
            rconn_t *r = evs[e].data.ptr;
            if (evs[e].events & EPOLLOUT) raw_flush(r, ep);
            if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            for (;;) {
                ssize_t k = recv(r->fd, r->in + r->in_len, r->cap - r->in_len, 0);
                if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) { /* connection lost */
                    outstanding -= r->fcount; failed += r->fcount;
                    for (; r->fcount; r->fcount--) {
                        client_t *c = r->fifo[r->fhead]->c;
                        c->st.errors++; c->st.err_rc[(-ZCONNECTIONLOSS) % MAX_RC]++;
                        r->fhead = (r->fhead + 1) % cfg.inflight;
                    }
                    epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL); close(r->fd); r->fd = -1;
                    break;
                }
                if (k < 0) break;
                r->in_len += k;
                size_t off = 0;
                while (r->in_len - off >= 4) {
                    int32_t len = get32(r->in + off);
                    if (r->in_len - off < 4 + (size_t)len) break;
                    int32_t xid = get32(r->in + off + 4), err = get32(r->in + off + 16);
                    off += 4 + len;
                    if (xid < 0 || r->fcount == 0) continue; /* ping / watch event / close reply */
                    slot_t *s = r->fifo[r->fhead];
                    r->fhead = (r->fhead + 1) % cfg.inflight; r->fcount--;
                    uint64_t t = now_ns();
                    client_t *c = s->c;
                    if (err == ZOK && s->t_submit >= t_measure_start && t <= t_measure_end) {
                        c->st.count[s->is_write]++;
                        c->st.hist[s->is_write][bucket_of(t - s->t_submit)]++;
                    } else if (err != ZOK && t <= t_measure_end) {
                        c->st.errors++; c->st.err_rc[(-err) % MAX_RC]++;
                    }
                    if (err == ZOK && s->is_write && cfg.op == OP_CREATE) s->created++;
                    if (cfg.op == OP_CREATEDEL) cd_done(s, err);
                    if (t > t_measure_end) outstanding--;
                    else raw_encode(r, s);
                }
                memmove(r->in, r->in + off, r->in_len - off);
                r->in_len -= off;
                if ((size_t)k < r->cap / 2) break;
            }
            if (r->fd >= 0 && r->out_len) raw_flush(r, ep);
        }
    }
    for (int i = 0; i < cfg.clients; i++) {
        atomic_store(&clients[i].outstanding, 0);
        if (rc[i].fd < 0) continue;
        fcntl(rc[i].fd, F_SETFL, fcntl(rc[i].fd, F_GETFL) & ~O_NONBLOCK);
        rc[i].out_len = rc[i].out_off = 0;
        raw_close_session(&rc[i]);
        if (write(rc[i].fd, rc[i].out, rc[i].out_len) < 0) { /* best effort */ }
        close(rc[i].fd);
    }
    (void)failed;
    return outstanding > 0 ? 5 : 0;
}

/* ---------------- probes ---------------- */
static int run_ready(void) { /* first successful reply; bounded by --seconds */
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(cfg.seconds * 1e9);
    while (now_ns() < deadline) {
        zhandle_t *zh = connect_one(cfg.hosts, 250);
        if (zh) {
            struct Stat st;
            int rc = zoo_exists(zh, "/", 0, &st);
            zookeeper_close(zh);
            if (rc == ZOK) {
                printf("ready_ms %.1f\n", (now_ns() - t0) / 1e6);
                return 0;
            }
        }
        sleep_ms(10);
    }
    fprintf(stderr, "zkload: %s not ready within %.0f s\n", cfg.hosts, cfg.seconds);
    return 2;
}

static int run_failover(void) {
    zhandle_t *zh = connect_one(cfg.hosts, cfg.connect_ms);
    if (!zh) { fprintf(stderr, "zkload: cannot connect to %s\n", cfg.hosts); return 2; }
    char path[64];
    snprintf(path, sizeof path, "/zkload-fo-%d", (int)getpid());
    int rc = zoo_create(zh, path, "0", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
    if (rc != ZOK) { fprintf(stderr, "zkload: create %s: %s\n", path, zerror(rc)); return 3; }
    if (cfg.kill_pid <= 0 || kill(cfg.kill_pid, SIGKILL) != 0) {
        fprintf(stderr, "zkload: cannot kill pid %d: %s\n", (int)cfg.kill_pid, strerror(errno));
        return 4;
    }
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(cfg.seconds * 1e9);
    int attempts = 0, reconnects = 0;
    const char *last = "none";
    while (now_ns() < deadline) {
        attempts++;
        rc = zoo_set(zh, path, "1", 1, -1);
        if (rc == ZOK) {
            double ms = (now_ns() - t0) / 1e6;
            printf("failover_ms %.1f attempts %d reconnects %d last_error %s\n", ms, attempts, reconnects, last);
            zoo_delete(zh, path, -1);
            zookeeper_close(zh);
            return 0;
        }
        last = zerror(rc);
        if (rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZAUTHFAILED) {
            zookeeper_close(zh);
            reconnects++;
            while (!(zh = connect_one(cfg.hosts, 1000)) && now_ns() < deadline) ;
            if (!zh) break;
        }
        sleep_ms(5);
    }
    fprintf(stderr, "zkload: no write succeeded within %.0f s (last: %s)\n", cfg.seconds, last);
    return 5;
}

static void usage(void) {
    fprintf(stderr,
            "zkload " ZKLOAD_VERSION " - ZooKeeper load generator (libzookeeper_mt async API)\n"
            "usage: zkload [--hosts h:p[,h:p]] [--clients N] [--inflight N] [--seconds S] [--warmup S]\n"
            "              [--op get|set|create|createdelete|exists|mixed|ready|failover] [--size BYTES] [--keys N]\n"
            "              [--read-pct P] [--json FILE|-] [--session-ms MS] [--connect-ms MS] [--kill-pid PID]\n");
}

int main(int argc, char **argv) {
    static struct option lo[] = {
        {"hosts", 1, 0, 'h'}, {"clients", 1, 0, 'c'}, {"inflight", 1, 0, 'i'}, {"seconds", 1, 0, 's'},
        {"warmup", 1, 0, 'w'}, {"op", 1, 0, 'o'}, {"size", 1, 0, 'z'}, {"keys", 1, 0, 'k'},
        {"read-pct", 1, 0, 'r'}, {"json", 1, 0, 'j'}, {"session-ms", 1, 0, 'S'}, {"connect-ms", 1, 0, 'C'},
        {"kill-pid", 1, 0, 'K'}, {"engine", 1, 0, 'E'}, {"help", 0, 0, '?'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'h': cfg.hosts = optarg; break;
        case 'c': cfg.clients = atoi(optarg); break;
        case 'i': cfg.inflight = atoi(optarg); break;
        case 's': cfg.seconds = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'z': cfg.size = atoi(optarg); break;
        case 'k': cfg.keys = atoi(optarg); break;
        case 'r': cfg.read_pct = atoi(optarg); break;
        case 'j': cfg.json = optarg; break;
        case 'S': cfg.session_ms = atoi(optarg); break;
        case 'C': cfg.connect_ms = atoi(optarg); break;
        case 'K': cfg.kill_pid = atoi(optarg); break;
        case 'E':
            if (!strcmp(optarg, "raw")) cfg.raw = 1;
            else if (strcmp(optarg, "mt")) { usage(); return 1; }
            break;
        case 'o': {
            int found = 0;
            for (int k = 0; k < (int)(sizeof op_names / sizeof *op_names); k++)
                if (!strcmp(optarg, op_names[k])) { cfg.op = k; found = 1; }
            if (!found) { usage(); return 1; }
            break;
        }
        default: usage(); return 1;
        }
    }
    if (cfg.clients < 1 || cfg.inflight < 1 || cfg.seconds <= 0 || cfg.keys < 1 || cfg.size < 0 ||
        cfg.warmup < 0 || cfg.read_pct < 0 || cfg.read_pct > 100) { usage(); return 1; }
    signal(SIGPIPE, SIG_IGN);
    zoo_set_debug_level(getenv("ZKLOAD_DEBUG") ? ZOO_LOG_LEVEL_WARN : ZOO_LOG_LEVEL_ERROR);
    if (!getenv("ZKLOAD_DEBUG")) zoo_set_log_stream(fopen("/dev/null", "w"));
    if (cfg.op == OP_READY) return run_ready();
    if (cfg.op == OP_FAILOVER) return run_failover();
    return run_load();
}
