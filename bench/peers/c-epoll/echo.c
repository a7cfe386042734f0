/* The reference for "as fast as C": a small epoll echo server, one thread per CPU, each with its
 * own epoll instance and an SO_REUSEPORT listener, level-triggered, nonblocking sockets, a
 * per-thread 64 KiB buffer, the unsent remainder kept per connection (backpressure via EPOLLOUT),
 * TCP_NODELAY, backlog SOMAXCONN. Usage: c-epoll-echo PORT [THREADS]
 * Built by scripts/bench-peers.sh with: cc -O2 -pthread -o c-epoll-echo echo.c */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn { char *unsent; size_t len; };
static int port;

static void *serve(void *arg) {
    (void)arg;
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, SOMAXCONN)) { perror("bind/listen"); exit(1); }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    size_t cap = 1024;
    struct conn *conns = calloc(cap, sizeof *conns);
    static __thread char buf[65536];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if ((size_t)c >= cap) {
                        size_t ncap = cap; while ((size_t)c >= ncap) ncap *= 2;
                        conns = realloc(conns, ncap * sizeof *conns);
                        memset(conns + cap, 0, (ncap - cap) * sizeof *conns); cap = ncap;
                    }
                    struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            struct conn *k = &conns[fd];
            if (k->len) { /* writable: flush the remainder */
                ssize_t w = send(fd, k->unsent, k->len, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) goto close_it;
                if (w > 0) { memmove(k->unsent, k->unsent + w, k->len - w); k->len -= w; }
                if (!k->len) { free(k->unsent); k->unsent = NULL; struct epoll_event m = { .events = EPOLLIN, .data.fd = fd }; epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m); }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN)) goto close_it;
            if (r < 0) continue;
            ssize_t off = 0;
            while (off < r) {
                ssize_t w = send(fd, buf + off, r - off, MSG_NOSIGNAL);
                if (w < 0) { if (errno == EAGAIN) break; goto close_it; }
                off += w;
            }
            if (off < r) {
                k->len = r - off; k->unsent = malloc(k->len); memcpy(k->unsent, buf + off, k->len);
                struct epoll_event m = { .events = EPOLLOUT, .data.fd = fd }; epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m);
            }
            continue;
        close_it:
            free(k->unsent); k->unsent = NULL; k->len = 0; close(fd);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]); return 2; }
    port = atoi(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t t[64];
    for (int i = 1; i < threads && i < 64; i++) pthread_create(&t[i], NULL, serve, NULL);
    serve(NULL);
    return 0;
}
