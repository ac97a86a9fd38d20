/* tapp: the test app curtain supervises in tests/e2e. Built static by the
 * test support code (gcc -static), so it also runs in an empty root.
 *
 *   tapp exit N             exit with code N
 *   tapp raise SIG          die from signal SIG (default disposition)
 *   tapp segv               segfault
 *   tapp record DIR [child] [keep]  handle every catchable signal, append
 *                           "signo mono_ns" to DIR/signals; write DIR/ready; SIGTERM or SIGINT
 *                           records and exits 0 (not with "keep"). With "child", a
 *                           forked child in the same group records to
 *                           DIR/child-signals and writes DIR/child-ready
 *   tapp term-parent        send SIGTERM to the parent, then pause (default
 *                           dispositions: the stop signal ends it)
 *   tapp ignore-term DIR [child]  ignore SIGTERM (and in a forked child of the same
 *                           group, with "child"); write DIR/ready; pause forever
 *   tapp status FILE        write SigBlk/SigIgn and the open fds to FILE, exit 0
 *   tapp orphans N          make N orphans (they exit at once), exit 0 once each is
 *                           reaped by someone else, 1 after 30 s
 *   tapp zombie DIR         make an orphaned zombie, keep running; write
 *                           DIR/reaped once it is gone; SIGTERM exits 0
 *   tapp leave-bg DIR       fork a child that ignores SIGTERM and pauses, write its
 *                           pid to DIR/bg, exit 0 at once
 *   tapp mark FILE [MS]     write "mono_ns\n" to FILE (created), then sleep MS ms
 *   tapp args FILE ARGS...  write each argument on a line to FILE, exit 0
 *   tapp hog MB [MS]        wait MS ms, allocate and touch MB MiB, then exit 0
 *   tapp pause DIR          write DIR/ready, pause forever (default dispositions)
 *   tapp tty DIR            write DIR/ready with "pgrp tpgid"; exit 0 on SIGINT's death
 *   tapp join-group DIR PGID  fork a child that joins process group PGID (default
 *                           dispositions) and writes its pid to DIR/child; exit 0
 *   tapp leave-group DIR    fork a child that stays in the app's group, and one that
 *                           leads a new group, which the app joins; SIGTERM writes
 *                           DIR/got-term and exits 0; write DIR/ready (the pid of the
 *                           child left behind in DIR/child)
 *   tapp many-bg N DIR      fork N children that ignore SIGTERM and pause, write
 *                           DIR/ready once all run, exit 0
 *   tapp chatty             ignore SIGTERM and write 100-byte lines to stdout forever
 *   tapp name-kill PID NAME  name itself NAME (PR_SET_NAME: any bytes, 15 at most), send
 *                           SIGTERM to PID, and stay while PID lives (10 s at most)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path_buf[4096];
static int record_fd = -1;
static int keep_on_term = 0;

static long long mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *in_dir(const char *dir, const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}

/* Write text to path atomically (tmp + rename), so readers never see half. */
static void write_file(const char *path, const char *text) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(tmp); exit(90); }
    if (write(fd, text, strlen(text)) < 0) { perror("write"); exit(90); }
    close(fd);
    if (rename(tmp, path) != 0) { perror("rename"); exit(90); }
}

static void ready(const char *dir) {
    char text[64];
    snprintf(text, sizeof text, "%d\n", (int)getpid());
    write_file(in_dir(dir, "ready"), text);
}

static void on_signal(int sig) {
    char line[64];
    int n = snprintf(line, sizeof line, "%d %lld\n", sig, mono_ns());
    if (write(record_fd, line, n) < 0) _exit(91);
    if ((sig == SIGTERM || sig == SIGINT) && !keep_on_term) _exit(0);
}

static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void copy_status_line(FILE *out, const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) fputs(line, out);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: tapp MODE ...\n"); return 64; }
    const char *mode = argv[1];
    const char *arg = argc > 2 ? argv[2] : "";

    if (!strcmp(mode, "exit")) return atoi(arg);
    if (!strcmp(mode, "raise")) {
        int sig = atoi(arg);
        signal(sig, SIG_DFL);
        sigset_t set; sigemptyset(&set); sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        return 92;
    }
    if (!strcmp(mode, "segv")) {
        signal(SIGSEGV, SIG_DFL);
        int *volatile p = NULL; /* volatile: a real fault, not folded away */
        return *p;
    }
    if (!strcmp(mode, "record")) {
        record_fd = open(in_dir(arg, "signals"), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (record_fd < 0) { perror("open"); return 90; }
        struct sigaction sa; memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);
        for (int s = 1; s <= SIGRTMAX; s++) {
            if (s == SIGKILL || s == SIGSTOP || s == SIGSEGV) continue;
            sigaction(s, &sa, NULL);
        }
        int with_child = 0;
        for (int i = 3; i < argc; i++) {
            if (!strcmp(argv[i], "keep")) keep_on_term = 1;
            if (!strcmp(argv[i], "child")) with_child = 1;
        }
        if (with_child && fork() == 0) {
            close(record_fd);
            record_fd = open(in_dir(arg, "child-signals"), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (record_fd < 0) _exit(90);
            sigset_t none; sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            write_file(in_dir(arg, "child-ready"), "1\n");
            for (;;) pause();
        }
        sigset_t none; sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        ready(arg);
        for (;;) pause();
    }
    if (!strcmp(mode, "term-parent")) {
        kill(getppid(), SIGTERM);
        for (;;) pause();
    }
    if (!strcmp(mode, "ignore-term")) {
        signal(SIGTERM, SIG_IGN);
        if (argc > 3 && !strcmp(argv[3], "child")) {
            pid_t c = fork();
            if (c == 0) { for (;;) pause(); }
            char text[32]; snprintf(text, sizeof text, "%d\n", (int)c);
            write_file(in_dir(arg, "child"), text);
        }
        ready(arg);
        for (;;) pause();
    }
    if (!strcmp(mode, "pause")) {
        ready(arg);
        for (;;) pause();
    }
    if (!strcmp(mode, "status")) {
        char tmp[4200]; snprintf(tmp, sizeof tmp, "%s.tmp", arg);
        FILE *out = fopen(tmp, "w");
        if (!out) { perror(tmp); return 90; }
        copy_status_line(out, "SigBlk:");
        copy_status_line(out, "SigIgn:");
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
            char link[300], target[512];
            snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            target[n < 0 ? 0 : n] = 0;
            fprintf(out, "fd %s %s\n", e->d_name, target);
        }
        if (d) closedir(d);
        fclose(out);
        rename(tmp, arg);
        return 0;
    }
    if (!strcmp(mode, "orphans")) {
        int n = atoi(arg);
        pid_t *pids = calloc(n, sizeof *pids);
        int pfd[2];
        if (pipe(pfd) != 0) return 90;
        pid_t spawner = fork();
        if (spawner == 0) {
            close(pfd[0]);
            for (int i = 0; i < n; i++) {
                pid_t c = fork();
                if (c == 0) _exit(0);
                if (c < 0) { perror("fork"); _exit(93); }
                if (write(pfd[1], &c, sizeof c) != sizeof c) _exit(94);
            }
            _exit(0);
        }
        close(pfd[1]);
        for (int i = 0; i < n; i++)
            if (read(pfd[0], &pids[i], sizeof pids[i]) != sizeof pids[i]) { fprintf(stderr, "short read\n"); return 95; }
        waitpid(spawner, NULL, 0);
        long long deadline = mono_ns() + 30000000000LL;
        for (int i = 0; i < n; i++) {
            while (kill(pids[i], 0) == 0) {
                if (mono_ns() > deadline) { fprintf(stderr, "pid %d not reaped\n", pids[i]); return 1; }
                usleep(200);
            }
        }
        return 0;
    }
    if (!strcmp(mode, "zombie")) {
        signal(SIGTERM, SIG_DFL);
        int pfd[2];
        if (pipe(pfd) != 0) return 90;
        pid_t mid = fork();
        if (mid == 0) {
            pid_t g = fork();
            if (g == 0) _exit(0);            /* becomes a zombie: mid never waits */
            siginfo_t si;                     /* wait until it is a zombie, keep it */
            waitid(P_PID, g, &si, WEXITED | WNOWAIT);
            if (write(pfd[1], &g, sizeof g) != sizeof g) _exit(94);
            _exit(0);                         /* orphan the zombie */
        }
        pid_t g;
        if (read(pfd[0], &g, sizeof g) != sizeof g) return 95;
        waitpid(mid, NULL, 0);
        char text[32]; snprintf(text, sizeof text, "%d\n", (int)g);
        write_file(in_dir(arg, "zombie"), text);
        ready(arg);
        long long deadline = mono_ns() + 10000000000LL;
        while (kill(g, 0) == 0) {
            if (mono_ns() > deadline) return 1;
            usleep(1000);
        }
        write_file(in_dir(arg, "reaped"), "yes\n");
        for (;;) pause();
    }
    if (!strcmp(mode, "leave-bg")) {
        signal(SIGTERM, SIG_IGN); /* before the fork: no window for a TERM */
        pid_t c = fork();
        if (c == 0) {
            for (;;) pause();
        }
        char text[32]; snprintf(text, sizeof text, "%d\n", (int)c);
        write_file(in_dir(arg, "bg"), text);
        return 0;
    }
    if (!strcmp(mode, "mark")) {
        char text[64]; snprintf(text, sizeof text, "%lld\n", mono_ns());
        write_file(arg, text);
        if (argc > 3) sleep_ms(atol(argv[3]));
        return 0;
    }
    if (!strcmp(mode, "args")) {
        FILE *out = fopen(arg, "w");
        if (!out) return 90;
        for (int i = 3; i < argc; i++) fprintf(out, "%s\n", argv[i]);
        fclose(out);
        return 0;
    }
    if (!strcmp(mode, "hog")) {
        long mb = atol(arg);
        if (argc > 3) sleep_ms(atol(argv[3]));
        for (long i = 0; i < mb; i++) {
            char *p = malloc(1 << 20);
            if (!p) return 96;
            memset(p, 1, 1 << 20);
        }
        return 0;
    }
    if (!strcmp(mode, "tty")) {
        char text[64];
        snprintf(text, sizeof text, "%d %d\n", (int)getpgrp(), (int)tcgetpgrp(0));
        write_file(in_dir(arg, "ready"), text);
        for (;;) pause();
    }
    if (!strcmp(mode, "join-group")) {
        pid_t pgid = (pid_t)atol(argc > 3 ? argv[3] : "0");
        pid_t c = fork();
        if (c == 0) {
            if (setpgid(0, pgid) != 0) { perror("setpgid"); _exit(97); }
            char text[32]; snprintf(text, sizeof text, "%d\n", (int)getpid());
            write_file(in_dir(arg, "child"), text);
            for (;;) pause();
        }
        int status;
        /* Exit once the child has joined (or failed to). */
        while (access(in_dir(arg, "child"), F_OK) != 0) {
            if (waitpid(c, &status, WNOHANG) == c) return 97;
            usleep(1000);
        }
        return 0;
    }
    if (!strcmp(mode, "leave-group")) {
        /* A stays in the app's group; B leads a group of its own, which the
         * app then joins: the app's old group still exists (A is in it). */
        pid_t a = fork();
        if (a == 0) { for (;;) pause(); }
        pid_t b = fork();
        if (b == 0) { for (;;) pause(); }
        if (setpgid(b, b) != 0 || setpgid(0, b) != 0) { perror("setpgid"); return 97; }
        char text[32]; snprintf(text, sizeof text, "%d\n", (int)a);
        write_file(in_dir(arg, "child"), text);
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigprocmask(SIG_BLOCK, &term, NULL);
        ready(arg);
        int sig;
        sigwait(&term, &sig);
        write_file(in_dir(arg, "got-term"), "yes\n");
        return 0;
    }
    if (!strcmp(mode, "many-bg")) {
        int n = atoi(arg);
        const char *dir = argc > 3 ? argv[3] : ".";
        signal(SIGTERM, SIG_IGN); /* inherited: no window for a TERM */
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) { for (;;) pause(); }
            if (c < 0) { perror("fork"); return 93; }
        }
        ready(dir);
        return 0;
    }
    if (!strcmp(mode, "chatty")) {
        signal(SIGTERM, SIG_IGN);
        char line[101];
        memset(line, 'x', 99);
        line[99] = '\n';
        line[100] = 0;
        for (;;)
            if (write(1, line, 100) < 0 && errno != EINTR) pause();
    }
    if (!strcmp(mode, "name-kill")) {
        pid_t target = (pid_t)atol(arg);
        if (prctl(PR_SET_NAME, argc > 3 ? argv[3] : "", 0, 0, 0) != 0) { perror("prctl"); return 97; }
        if (kill(target, SIGTERM) != 0) return 98;
        /* Stay (10 s at most) while PID lives, so it can read our name. */
        long long deadline = mono_ns() + 10000000000LL;
        while (kill(target, 0) == 0 && mono_ns() < deadline) usleep(1000);
        return 0;
    }
    fprintf(stderr, "tapp: unknown mode %s\n", mode);
    return 64;
}
