/*
 * probe: both ends of curtain's benchmark (bench/bench.py drives it).
 *
 * Measuring side (the init under test is always a command PREFIX, absolute
 * paths only, so no PATH lookup is timed; "as PID 1" means the init is the
 * first process of a new pid namespace, cloned by us, so its exit and exit
 * status are seen exactly):
 *
 *   probe startup ROUNDS WARMUP -e K=V... -- CMD ::: CMD ::: ...
 *       Start each CMD as PID 1 and wait for it, ROUNDS times, the order of
 *       the commands rotated every round; prints one line of nanoseconds per
 *       command (failures first). A CMD that starts with "@env" gets the -e variables added
 *       to the environment (the production path); the others get ours.
 *   probe hold -- CMD...
 *       Start CMD as PID 1, print "pid N", print "status S" when it exits.
 *   probe signal COUNT [-S STRACE_OUT] -- PREFIX...
 *       PREFIX probe child-sig SHM as PID 1; COUNT x SIGUSR1 to the init,
 *       1 ms apart, each matched to its receipt by the child; prints the
 *       latencies in ns, -1 for a signal not received within 200 ms.
 *   probe shutdown -- PREFIX...
 *       Same child; SIGTERM to the init, which forwards it; the child
 *       re-raises it. Prints "ns to_child_ns status": SIGTERM sent to
 *       init gone, and to the app's receipt.
 *   probe reap N [-S STRACE_OUT] -- PREFIX...
 *       PREFIX probe child-reap N SHM as PID 1: N zombies handed to the init
 *       at once. Prints "N ns remaining status".
 *   (-S: `strace -f -c` is attached to the init for the measured part only:
 *    the syscall counts are the point, the times are thrown away.)
 *
 * Child side (runs under the init): child-true, child-idle, child-sig SHM,
 * child-reap N SHM.
 *
 * SHM is a small file in /dev/shm that both sides map (struct shared).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_SIGNALS 4096

struct shared {
	int ready;		/* child: set up, waiting */
	int received;		/* child-sig: SIGUSR1s received so far */
	long long at[MAX_SIGNALS]; /* child-sig: receipt time of each */
	long long term_at;	/* child-sig: SIGTERM receipt time */
	int go;			/* child-reap: measuring side is ready */
	int zombies;		/* child-reap: zombies handed over */
	int remaining;		/* child-reap: not reaped when it gave up */
	long long t0, t1;	/* child-reap: handover, last one gone */
	int done;		/* child-reap: figures written */
};

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sleep_ns(long long ns)
{
	struct timespec t = { ns / 1000000000LL, ns % 1000000000LL };
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static int load(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static _Noreturn void fail(const char *what)
{
	fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Poll *flag every step_us until it is non-zero or timeout_ms passed. */
static int wait_flag(int *flag, int timeout_ms, int step_us)
{
	long long end = now_ns() + timeout_ms * 1000000LL;
	while (!load(flag)) {
		if (now_ns() > end)
			return 0;
		sleep_ns(step_us * 1000LL);
	}
	return 1;
}

/* ---- processes ------------------------------------------------------- */

/* Start argv as PID 1 of a new pid namespace; its pidfd goes to *pidfd. */
static pid_t start_pid1(char *const argv[], char *const envp[], int *pidfd)
{
	struct clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_NEWPID | CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)pidfd;
	ca.exit_signal = SIGCHLD;
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	if (pid == 0) {
		/* if we die (Ctrl-C), the init dies, and its namespace with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	return pid;
}

/* Exit status as the shell shows it (128+N for a signal); -1 on timeout. */
static int wait_gone(pid_t pid, int pidfd, int timeout_ms, long long *gone_at)
{
	struct pollfd p = { pidfd, POLLIN, 0 };
	int r;
	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return -1;
	if (gone_at)
		*gone_at = now_ns();
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	close(pidfd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

static void kill_and_wait(pid_t pid, int pidfd)
{
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	wait_gone(pid, pidfd, 5000, NULL);
}

/* A run of PREFIX + "probe CHILD_ARGS..." with its shared file. */
struct run {
	pid_t pid;
	int pidfd;
	struct shared *s;
	char path[64];
};

static char self[4096];
/* Our figures; stdout itself is the inits' and apps' (sent to stderr), so
 * what they print cannot mix with the figures. */
static FILE *results;

static void run_start(struct run *r, char **prefix, int np, const char *mode, const char *arg)
{
	strcpy(r->path, "/dev/shm/curtain-bench.XXXXXX");
	int fd = mkstemp(r->path);
	if (fd < 0)
		fail("mkstemp");
	if (ftruncate(fd, sizeof(struct shared)) < 0)
		fail("ftruncate");
	r->s = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->s == MAP_FAILED)
		fail("mmap");
	close(fd);
	char *argv[64];
	int k = 0;
	for (int i = 0; i < np && k < 58; i++)
		argv[k++] = prefix[i];
	argv[k++] = self;
	argv[k++] = (char *)mode;
	if (arg)
		argv[k++] = (char *)arg;
	argv[k++] = r->path;
	argv[k] = NULL;
	r->pid = start_pid1(argv, environ, &r->pidfd);
	if (r->pid < 0)
		fail("clone3");
}

static void run_end(struct run *r, int status_known)
{
	if (!status_known)
		kill_and_wait(r->pid, r->pidfd);
	munmap(r->s, sizeof(struct shared));
	unlink(r->path);
}

/* strace -f -c on the init until strace_stop(); 0 if it could not attach. */
static pid_t strace_start(pid_t pid, const char *out)
{
	char spid[16];
	snprintf(spid, sizeof spid, "%d", pid);
	pid_t sp = fork();
	if (sp < 0)
		return 0;
	if (sp == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		execlp("strace", "strace", "-f", "-c", "-q", "-o", out, "-p", spid, (char *)NULL);
		_exit(127);
	}
	/* attached when the init's TracerPid is set */
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	for (int i = 0; i < 5000; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			char *t = strstr(buf, "TracerPid:");
			if (t && atoi(t + 10) > 0) {
				sleep_ns(20000000);
				return sp;
			}
		}
		if (waitpid(sp, NULL, WNOHANG) == sp)
			return 0;
		sleep_ns(1000000);
	}
	kill(sp, SIGKILL);
	waitpid(sp, NULL, 0);
	return 0;
}

static void strace_stop(pid_t sp)
{
	if (sp <= 0)
		return;
	kill(sp, SIGINT); /* detaches and writes the summary */
	while (waitpid(sp, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- measuring side -------------------------------------------------- */

static int do_startup(int rounds, int warmup, char **envs, int nenv, char **cmdv, int cmdc)
{
	char **cmds[32];
	char **envp[32];
	int n = 0;
	/* the production environment: ours plus the -e variables */
	int nbase = 0;
	while (environ[nbase])
		nbase++;
	char **prod = calloc(nbase + nenv + 1, sizeof *prod);
	if (!prod)
		fail("calloc");
	memcpy(prod, environ, nbase * sizeof *prod);
	memcpy(prod + nbase, envs, nenv * sizeof *prod);
	char **start = cmdv;
	for (int i = 0; i <= cmdc; i++) {
		if (i < cmdc && strcmp(cmdv[i], ":::"))
			continue;
		if (i < cmdc)
			cmdv[i] = NULL;
		if (n == 32)
			fail("too many commands");
		envp[n] = environ;
		if (start[0] && !strcmp(start[0], "@env")) {
			envp[n] = prod;
			start++;
		}
		if (!start[0])
			fail("empty command");
		cmds[n++] = start;
		start = cmdv + i + 1;
	}
	long long *ns = calloc((size_t)rounds * n, sizeof *ns);
	int *bad = calloc(n, sizeof *bad);
	if (!ns || !bad)
		fail("calloc");
	/* what the inits print after the first round (which shows whether
	 * they work) goes to /dev/null */
	FILE *out = results;
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		fail("/dev/null");
	for (int r = 0; r < warmup + rounds; r++) {
		for (int j = 0; j < n; j++) {
			int k = (j + r) % n;
			int pidfd;
			long long t0 = now_ns(), t1;
			pid_t pid = start_pid1(cmds[k], envp[k], &pidfd);
			if (pid < 0)
				fail("clone3");
			int st = wait_gone(pid, pidfd, -1, &t1);
			if (st != 0)
				bad[k]++;
			if (r >= warmup)
				ns[(size_t)k * rounds + (r - warmup)] = t1 - t0;
		}
		if (r == 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
	}
	for (int k = 0; k < n; k++) {
		fprintf(out, "%d", bad[k]);
		for (int i = 0; i < rounds; i++)
			fprintf(out, " %lld", ns[(size_t)k * rounds + i]);
		fprintf(out, "\n");
	}
	fclose(out);
	return 0;
}

static int do_hold(char **cmd)
{
	int pidfd;
	pid_t pid = start_pid1(cmd, environ, &pidfd);
	if (pid < 0)
		fail("clone3");
	fprintf(results, "pid %d\n", pid);
	fflush(results);
	fprintf(results, "status %d\n", wait_gone(pid, pidfd, -1, NULL));
	return 0;
}

static int do_signal(int count, const char *strace_out, char **prefix, int np)
{
	struct run r;
	run_start(&r, prefix, np, "child-sig", NULL);
	if (!wait_flag(&r.s->ready, 5000, 200)) {
		fprintf(stderr, "probe: the child never got ready\n");
		run_end(&r, 0);
		return 1;
	}
	sleep_ns(10000000); /* the init is back in its wait */
	pid_t sp = strace_out ? strace_start(r.pid, strace_out) : 0;
	prctl(PR_SET_TIMERSLACK, 1UL);
	for (int i = 0; i < count && i < MAX_SIGNALS; i++) {
		int before = load(&r.s->received);
		long long sent = now_ns();
		kill(r.pid, SIGUSR1);
		/* 1 ms apart, and never before the last one arrived: standard
		 * signals that overlap coalesce */
		long long gap = sent + 1000000LL - now_ns();
		if (gap > 0)
			sleep_ns(gap);
		int after;
		while ((after = load(&r.s->received)) == before && now_ns() < sent + 200000000LL)
			sleep_ns(20000);
		fprintf(results, "%lld\n", after > before ? r.s->at[before] - sent : -1LL);
	}
	strace_stop(sp);
	kill(r.pid, SIGTERM);
	int st = wait_gone(r.pid, r.pidfd, 5000, NULL);
	run_end(&r, st >= 0);
	return 0;
}

static int do_shutdown(char **prefix, int np)
{
	struct run r;
	run_start(&r, prefix, np, "child-sig", NULL);
	if (!wait_flag(&r.s->ready, 5000, 200)) {
		fprintf(stderr, "probe: the child never got ready\n");
		run_end(&r, 0);
		return 1;
	}
	sleep_ns(10000000);
	long long sent = now_ns(), gone = 0;
	kill(r.pid, SIGTERM);
	int st = wait_gone(r.pid, r.pidfd, 5000, &gone);
	long long term_at = r.s->term_at;
	fprintf(results, "%lld %lld %d\n", st >= 0 ? gone - sent : -1LL, term_at ? term_at - sent : -1LL, st);
	run_end(&r, st >= 0);
	return 0;
}

static int do_reap(int n, const char *strace_out, char **prefix, int np)
{
	char sn[16];
	snprintf(sn, sizeof sn, "%d", n);
	struct run r;
	run_start(&r, prefix, np, "child-reap", sn);
	pid_t sp = 0;
	if (wait_flag(&r.s->ready, 10000, 1000) && strace_out)
		sp = strace_start(r.pid, strace_out);
	store(&r.s->go, 1);
	wait_flag(&r.s->done, 60000 + n, 2000);
	strace_stop(sp);
	/* the child exits once it has written its figures; so does the init */
	int st = wait_gone(r.pid, r.pidfd, 10000, NULL);
	fprintf(results, "%d %lld %d %d\n", r.s->zombies, r.s->t1 - r.s->t0, load(&r.s->done) ? r.s->remaining : -1, st);
	run_end(&r, st >= 0);
	return 0;
}

/* ---- child side ------------------------------------------------------ */

static struct shared *map_shared(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail(path);
	struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		fail("mmap");
	close(fd);
	return s;
}

static _Noreturn void child_sig(struct shared *s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	store(&s->ready, 1);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		long long t = now_ns();
		if (sig == SIGUSR1) {
			int c = s->received;
			if (c < MAX_SIGNALS)
				s->at[c] = t;
			store(&s->received, c + 1);
		} else if (sig == SIGTERM) {
			/* die of it, as an app with the default action does */
			s->term_at = t;
			signal(SIGTERM, SIG_DFL);
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			raise(SIGTERM);
			_exit(99);
		}
	}
}

/* A spawner forks n children that exit at once and waits until all are
 * zombies without reaping them (WNOWAIT); when the spawner exits, the
 * kernel hands all n to PID 1 in one go. We (not a subreaper) then poll
 * until each pid is gone: kill(pid, 0) answers ESRCH only once it is
 * reaped, and nothing else forks in this namespace, so pids are not reused. */
static int child_reap(struct shared *s, int n)
{
	int *pids = mmap(NULL, (size_t)n * sizeof *pids, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pids == MAP_FAILED)
		fail("mmap");
	prctl(PR_SET_TIMERSLACK, 1UL);
	store(&s->ready, 1);
	wait_flag(&s->go, 10000, 1000);
	pid_t spawner = fork();
	if (spawner < 0)
		fail("fork");
	if (spawner == 0) {
		int made = 0;
		for (; made < n; made++) {
			pid_t p = fork();
			if (p == 0)
				_exit(0);
			if (p < 0)
				break;
			pids[made] = p;
		}
		for (int i = 0; i < made; i++) {
			siginfo_t si;
			while (waitid(P_PID, pids[i], &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
				;
		}
		s->zombies = made;
		_exit(0);
	}
	while (waitpid(spawner, NULL, 0) < 0 && errno == EINTR)
		;
	s->t0 = now_ns();
	int made = s->zombies, next = 0;
	long long end = s->t0 + 20000000000LL;
	for (;;) {
		/* the init reaps oldest first: stop at the first one still there */
		while (next < made && kill(pids[next], 0) < 0 && errno == ESRCH)
			next++;
		if (next == made || now_ns() > end)
			break;
		sleep_ns(50000);
	}
	s->t1 = now_ns();
	int left = 0;
	for (int i = next; i < made; i++)
		left += !(kill(pids[i], 0) < 0 && errno == ESRCH);
	s->remaining = left;
	store(&s->done, 1);
	return left ? 1 : 0;
}

/* ---- main ------------------------------------------------------------ */

static char **after_dashes(int argc, char **argv, int from, int *np)
{
	for (int i = from; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			*np = argc - i - 1;
			return argv + i + 1;
		}
	fprintf(stderr, "probe: no -- PREFIX\n");
	exit(2);
}

/* "-S FILE" among argv[from..] before "--" */
static const char *strace_opt(int argc, char **argv, int from)
{
	for (int i = from; i + 1 < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-S"))
			return argv[i + 1];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: probe MODE ... (see probe.c)\n");
		return 2;
	}
	const char *mode = argv[1];
	if (!strcmp(mode, "child-true"))
		return 0;
	if (!strcmp(mode, "child-idle"))
		for (;;)
			pause();
	if (!strcmp(mode, "child-sig") && argc == 3)
		child_sig(map_shared(argv[2]));
	if (!strcmp(mode, "child-reap") && argc == 4)
		return child_reap(map_shared(argv[3]), atoi(argv[2]));

	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len < 0)
		fail("readlink /proc/self/exe");
	self[len] = 0;
	signal(SIGPIPE, SIG_IGN);
	int keep = dup(1);
	if (keep < 0 || !(results = fdopen(keep, "w")) || dup2(2, 1) < 0)
		fail("stdout");
	int np;
	char **prefix = after_dashes(argc, argv, 2, &np);
	if (!strcmp(mode, "startup") && argc > 4) {
		char *envs[32];
		int nenv = 0;
		for (int i = 4; argv + i < prefix - 1; i++)
			if (!strcmp(argv[i], "-e") && argv + i + 1 < prefix - 1 && nenv < 32)
				envs[nenv++] = argv[++i];
		return do_startup(atoi(argv[2]), atoi(argv[3]), envs, nenv, prefix, np);
	}
	if (!strcmp(mode, "hold"))
		return do_hold(prefix);
	if (!strcmp(mode, "signal") && argc > 2)
		return do_signal(atoi(argv[2]), strace_opt(argc, argv, 3), prefix, np);
	if (!strcmp(mode, "shutdown"))
		return do_shutdown(prefix, np);
	if (!strcmp(mode, "reap") && argc > 2)
		return do_reap(atoi(argv[2]), strace_opt(argc, argv, 3), prefix, np);
	fprintf(stderr, "probe: unknown mode or arguments: %s\n", mode);
	return 2;
}
