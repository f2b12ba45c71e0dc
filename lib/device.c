#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "wg_backend.h"
#include "wgrp/device.h"

/* How long a userspace implementation may take to open its UAPI socket. */
#define USERSPACE_START_MS 5000
#define USERSPACE_STOP_MS 2000
/* How long a lost interface's userspace implementation gets to exit, for the
 * log to say which of the two went first. The daemon is on its way out, so
 * waiting costs nothing; a loaded machine (sanitized builds beside other
 * tests) took over a second. */
#define USERSPACE_EXIT_MS 3000

struct device {
	char ifname[IFNAMSIZ];
	enum device_backend backend;
	int ifindex;              /* 0 until the interface exists */
	pid_t userspace_pid;      /* a userspace implementation we started, or 0 */
	int pidfd;                /* of userspace_pid, or -1 */
	struct nl_sock *nl;
	/* device_watch(): */
	struct loop *loop;
	int link_events; /* rtnetlink socket in RTNLGRP_LINK, or -1 */
	device_lost_fn *lost;
	void *lost_data;
};

void wg_device_info_free(struct wg_device_info *info)
{
	if (!info)
		return;
	for (size_t i = 0; i < info->n_peers; i++)
		free(info->peers[i].allowed_ips);
	free(info->peers);
	free(info);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The mark names the program and its pid: an interface whose program is gone
 * is a leftover from a crash, one whose program runs is in use. */
static void format_mark(char *buf, size_t len, const char *program)
{
	snprintf(buf, len, "wg-rp %s pid %ld", program, (long)getpid());
}

static bool parse_mark(const char *alias, char program[16], long *pid)
{
	int end = 0;

	return sscanf(alias, "wg-rp %15s pid %ld%n", program, pid, &end) == 2 &&
	       alias[end] == '\0';
}

static bool program_running(const char *program, long pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, program);
}

/* Makes ifname free for us: absent, or a leftover of ours (deleted). */
static int claim_name(struct device *d, struct diag_list *notes, struct errbuf *e)
{
	struct link_info li;
	char owner[16];
	long pid;
	int r = link_lookup(d->nl, d->ifname, &li);

	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return errbuf_set(e, r, "looking up interface %s: %s", d->ifname, strerror(-r));
	if (!parse_mark(li.alias, owner, &pid))
		return errbuf_set(e, -EEXIST,
				  "interface %s already exists and was not created by wg-rp; "
				  "leaving it alone: choose another name with -i",
				  d->ifname);
	if (program_running(owner, pid))
		return errbuf_set(e, -EBUSY,
				  "interface %s is in use by %s (pid %ld); choose another name with -i",
				  d->ifname, owner, pid);
	diag_add(notes, DIAG_WARNING,
		 "interface %s was left over by %s (pid %ld), which is gone: recreating it",
		 d->ifname, owner, pid);
	r = link_delete(d->nl, li.ifindex);
	if (r < 0 && r != -ENODEV)
		return errbuf_set(e, r, "deleting leftover interface %s: %s", d->ifname,
				  strerror(-r));
	return 0;
}

static int uapi_ready(const char *ifname)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s.sock", WG_UAPI_DIR, ifname);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static void stop_userspace(struct device *d)
{
	int status;

	if (!d->userspace_pid)
		return;
	kill(d->userspace_pid, SIGTERM);
	for (int waited = 0; waitpid(d->userspace_pid, &status, WNOHANG) == 0; waited += 20) {
		if (waited >= USERSPACE_STOP_MS) {
			kill(d->userspace_pid, SIGKILL);
			waitpid(d->userspace_pid, &status, 0);
			break;
		}
		sleep_ms(20);
	}
	d->userspace_pid = 0;
}

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The environment of wireguard-go: ours, in the foreground, logging errors
 * only unless LOG_LEVEL says otherwise. Made before fork(): the child of a
 * process with threads (the relay workers) may only call async-signal-safe
 * functions, which setenv() is not. Returns a malloc'ed array of environ's
 * strings and two literals, or NULL. */
static char **userspace_env(void)
{
	size_t n = 0, k = 0;
	bool has_level = false;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(environ[i], "WG_PROCESS_FOREGROUND=", 22))
			continue;
		has_level |= !strncmp(environ[i], "LOG_LEVEL=", 10);
		env[k++] = environ[i];
	}
	env[k++] = "WG_PROCESS_FOREGROUND=1";
	if (!has_level)
		env[k++] = "LOG_LEVEL=error";
	return env;
}

/* Starts $WG_QUICK_USERSPACE_IMPLEMENTATION (wireguard-go) as wg-quick does,
 * but in the foreground as our child, so that it is ours to stop, and dies
 * with us. Its log goes to our stderr. */
static int start_userspace(struct device *d, struct errbuf *e)
{
	const char *impl = getenv("WG_QUICK_USERSPACE_IMPLEMENTATION");
	char **env = userspace_env();
	int fds[2], child_errno = 0, status;
	ssize_t n;
	pid_t pid;

	if (!impl || !*impl)
		impl = "wireguard-go";
	if (!env)
		return errbuf_set(e, -ENOMEM, "out of memory");
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(env);
		return errbuf_set(e, -errno, "pipe: %s", strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		free(env);
		close(fds[0]);
		close(fds[1]);
		return errbuf_set(e, -errno, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		sigset_t none;

		/* Our caller may block the signals it waits for; the child must not. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* exec makes it dumpable again, and it holds the private key too. */
		setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvpe(impl, (char *[]){ (char *)impl, d->ifname, NULL }, env);
		child_errno = errno;
		(void)!write(fds[1], &child_errno, sizeof(child_errno));
		_exit(127);
	}
	free(env);
	close(fds[1]);
	/* The pipe closes unread on a successful exec (O_CLOEXEC). */
	while ((n = read(fds[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	close(fds[0]);
	if (n > 0) {
		waitpid(pid, &status, 0);
		return errbuf_set(e, -child_errno,
				  "cannot create %s: the kernel has no WireGuard (load the wireguard "
				  "module: modprobe wireguard) and %s cannot run: %s (install "
				  "wireguard-go, or set WG_QUICK_USERSPACE_IMPLEMENTATION)",
				  d->ifname, impl, strerror(child_errno));
	}
	d->userspace_pid = pid;
	/* Our unreaped child: its pid cannot have been reused. */
	d->pidfd = pidfd_open(pid);
	if (d->pidfd < 0)
		return errbuf_set(e, -errno, "pidfd_open: %s", strerror(errno));
	for (int waited = 0; uapi_ready(d->ifname) < 0; waited += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			d->userspace_pid = 0;
			return errbuf_set(e, -ECHILD, "%s %s exited (status %d) before it was ready",
					  impl, d->ifname,
					  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		}
		if (waited >= USERSPACE_START_MS)
			return errbuf_set(e, -ETIMEDOUT, "%s did not open %s/%s.sock within %d ms",
					  impl, WG_UAPI_DIR, d->ifname, USERSPACE_START_MS);
		sleep_ms(20);
	}
	return 0;
}

static int create(struct device *d, const char *program, struct diag_list *notes,
		  struct errbuf *e)
{
	char mark[LINK_ALIAS_MAX];
	struct link_info li;
	int r = link_create_wireguard(d->nl, d->ifname);

	if (r == -EPERM || r == -EACCES)
		return errbuf_set(e, r, "cannot create interface %s: permission denied: %s needs "
					"root or CAP_NET_ADMIN",
				  d->ifname, program);
	if (r == -EOPNOTSUPP) {
		r = start_userspace(d, e);
		if (r < 0)
			return r;
		d->backend = DEVICE_USERSPACE;
		diag_add(notes, DIAG_WARNING,
			 "the kernel has no WireGuard: %s runs on the userspace implementation "
			 "(pid %ld)",
			 d->ifname, (long)d->userspace_pid);
	} else if (r < 0) {
		return errbuf_set(e, r, "cannot create interface %s: %s", d->ifname, strerror(-r));
	}
	r = link_lookup(d->nl, d->ifname, &li);
	if (r < 0)
		return errbuf_set(e, r, "interface %s vanished after creation: %s", d->ifname,
				  strerror(-r));
	d->ifindex = li.ifindex;
	format_mark(mark, sizeof(mark), program);
	r = link_set_alias(d->nl, d->ifindex, mark);
	if (r < 0)
		return errbuf_set(e, r, "marking interface %s as ours: %s", d->ifname, strerror(-r));
	return 0;
}

/* wg-quick's rule: a peer network needs a route unless an interface address's
 * own prefix already covers it (the kernel routes that prefix itself). */
static bool covered(const struct conf *c, const struct ip_prefix *net)
{
	for (size_t i = 0; i < c->n_addresses; i++) {
		const struct ip_prefix *a = &c->addresses[i];

		if (a->addr.family == net->addr.family && a->cidr <= net->cidr &&
		    ip_prefix_contains(a, &net->addr))
			return true;
	}
	return false;
}

static bool routes_to(const struct conf *c, const struct ip_prefix *net)
{
	for (size_t i = 0; i < c->n_peers; i++)
		for (size_t j = 0; j < c->peers[i].n_allowed_ips; j++)
			if (ip_prefix_cmp(&c->peers[i].allowed_ips[j], net) == 0)
				return true;
	return false;
}

/* Adds the route of each peer network of c that other (NULL: none) has no
 * peer for, or deletes it (!add). */
static int change_routes(struct device *d, const struct conf *c, const struct conf *other,
			 bool add, struct diag_list *notes, struct errbuf *e)
{
	char net[ADDR_PREFIX_STRLEN];

	for (size_t i = 0; i < c->n_peers; i++) {
		for (size_t j = 0; j < c->peers[i].n_allowed_ips; j++) {
			const struct ip_prefix *p = &c->peers[i].allowed_ips[j];
			int r;

			if (covered(c, p) || (other && routes_to(other, p)))
				continue;
			ip_prefix_format(p, net, sizeof(net));
			/* A default route through the tunnel would take over the host's
			 * traffic; wg-quick needs policy routing for it, wg-rp has no use. */
			if (p->cidr == 0) {
				if (add)
					diag_add(notes, DIAG_WARNING,
						 "%s:%u: AllowedIPs %s: not adding a default route "
						 "via %s, ignoring",
						 c->name, c->peers[i].line, net, d->ifname);
				continue;
			}
			r = link_change_route(d->nl, d->ifindex, p, add);
			/* Gone already: someone else's doing, and what we wanted. */
			if (r < 0 && !add && (r == -ESRCH || r == -ENOENT))
				r = 0;
			if (r < 0)
				return errbuf_set(e, r, "%s route %s via %s: %s",
						  add ? "adding" : "deleting", net, d->ifname,
						  strerror(-r));
		}
	}
	return 0;
}

/* Sends s to the device, over the backend it runs on. */
static int wg_set(struct device *d, const struct wg_set *s, struct errbuf *e)
{
	return d->backend == DEVICE_KERNEL ? wg_genl_set(d->ifname, s, e)
					   : wg_uapi_set(d->ifname, s, e);
}

/* Everything of c, replacing whatever peers the device had. */
static int wg_set_all(struct device *d, const struct conf *c, struct errbuf *e)
{
	struct wg_set_peer *peers = calloc(c->n_peers ? c->n_peers : 1, sizeof(*peers));
	struct wg_set s = { .c = c, .peers = peers, .n_peers = c->n_peers,
			    .device = WG_SET_PRIVATE_KEY | WG_SET_LISTEN_PORT | WG_SET_FWMARK |
				      WG_SET_REPLACE_PEERS };
	int r;

	if (!peers)
		return errbuf_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_peers; i++)
		peers[i] = (struct wg_set_peer){ .p = &c->peers[i], .fields = CONF_PEER_WIREGUARD };
	r = wg_set(d, &s, e);
	free(peers);
	return r;
}

static int set_mtu(struct device *d, uint32_t mtu, struct errbuf *e)
{
	int r = link_set_mtu(d->nl, d->ifindex, mtu);

	if (r < 0)
		return errbuf_set(e, r, "setting MTU %u on %s: %s", mtu, d->ifname, strerror(-r));
	return 0;
}

int device_up(struct device **out, const struct conf *c, const char *ifname,
	      const char *program, struct diag_list *notes, struct errbuf *e)
{
	char addr[ADDR_PREFIX_STRLEN];
	struct device *d = calloc(1, sizeof(*d));
	int r;

	*out = NULL;
	if (!d)
		return errbuf_set(e, -ENOMEM, "out of memory");
	d->pidfd = -1;
	d->link_events = -1;
	snprintf(d->ifname, sizeof(d->ifname), "%s", ifname);
	r = link_open(&d->nl);
	if (r < 0) {
		errbuf_set(e, r, "cannot open a netlink socket: %s", strerror(-r));
		goto fail;
	}
	r = claim_name(d, notes, e);
	if (r < 0)
		goto fail;
	r = create(d, program, notes, e);
	if (r < 0)
		goto fail;

	r = wg_set_all(d, c, e);
	if (r < 0)
		goto fail;
	if (c->mtu) {
		r = set_mtu(d, c->mtu, e);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < c->n_addresses; i++) {
		r = link_add_address(d->nl, d->ifindex, &c->addresses[i]);
		if (r < 0) {
			ip_prefix_format(&c->addresses[i], addr, sizeof(addr));
			errbuf_set(e, r, "adding address %s to %s: %s", addr, d->ifname, strerror(-r));
			goto fail;
		}
	}
	r = link_set_up(d->nl, d->ifindex);
	if (r < 0) {
		errbuf_set(e, r, "bringing %s up: %s", d->ifname, strerror(-r));
		goto fail;
	}
	r = change_routes(d, c, NULL, true, notes, e);
	if (r < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	device_down(d);
	return r;
}

enum device_backend device_backend(const struct device *d)
{
	return d->backend;
}

const char *device_ifname(const struct device *d)
{
	return d->ifname;
}

int device_get(struct device *d, struct wg_device_info **out, struct errbuf *e)
{
	return d->backend == DEVICE_KERNEL ? wg_genl_get(d->ifname, out, e)
					   : wg_uapi_get(d->ifname, out, e);
}

int device_update(struct device *d, const struct conf *old, const struct conf *c,
		  const struct conf_diff *diff, struct diag_list *notes, struct errbuf *e)
{
	struct wg_set_peer *peers = calloc(old->n_peers + c->n_peers + 1, sizeof(*peers));
	struct wg_set s = { .c = c, .peers = peers };
	int r = 0;

	if (!peers)
		return errbuf_set(e, -ENOMEM, "out of memory");
	if (diff->listen_port)
		s.device |= WG_SET_LISTEN_PORT;
	if (diff->fwmark)
		s.device |= WG_SET_FWMARK;
	/* Removed first: an AllowedIPs network may move to a peer added now. */
	for (size_t i = 0; i < old->n_peers; i++)
		if (diff->new_index[i] == CONF_DIFF_NONE)
			peers[s.n_peers++] = (struct wg_set_peer){ .p = &old->peers[i], .remove = true };
	for (size_t i = 0; i < c->n_peers; i++) {
		if (diff->old_index[i] == CONF_DIFF_NONE)
			peers[s.n_peers++] = (struct wg_set_peer){ .p = &c->peers[i],
								   .fields = CONF_PEER_WIREGUARD };
		else if (diff->changes[i] & CONF_PEER_WIREGUARD)
			peers[s.n_peers++] = (struct wg_set_peer){
				.p = &c->peers[i], .update_only = true,
				.fields = diff->changes[i] & CONF_PEER_WIREGUARD
			};
	}
	if (s.device || s.n_peers)
		r = wg_set(d, &s, e);
	free(peers);
	/* WireGuard's own default when the config leaves MTU out. */
	if (r == 0 && diff->mtu)
		r = set_mtu(d, c->mtu ? c->mtu : CONF_PATH_MTU, e);
	if (r == 0)
		r = change_routes(d, old, c, false, notes, e);
	if (r == 0)
		r = change_routes(d, c, old, true, notes, e);
	return r;
}

/* Says why the device is lost into why: the userspace implementation killed
 * (its TUN, and so the interface, goes with it), or the interface gone.
 * Either way a userspace implementation exits too: it is given a moment, to
 * tell which went first. */
static void explain_loss(struct device *d, char *why, size_t size)
{
	char name[IF_NAMESIZE], status[64] = "";
	siginfo_t info = { 0 };
	bool link_gone;

	if (d->pidfd >= 0) {
		struct pollfd p = { .fd = d->pidfd, .events = POLLIN };

		while (poll(&p, 1, USERSPACE_EXIT_MS) < 0 && errno == EINTR)
			;
		/* WNOWAIT: device_down() reaps it. */
		if (waitid(P_PIDFD, (id_t)d->pidfd, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
			info.si_pid = 0;
	}
	link_gone = !if_indextoname((unsigned)d->ifindex, name);
	if (info.si_pid && info.si_code == CLD_EXITED)
		snprintf(status, sizeof(status), "exited with status %d", info.si_status);
	else if (info.si_pid)
		snprintf(status, sizeof(status), "was killed by signal %d (%s)", info.si_status,
			 strsignal(info.si_status));
	/* Killed, it took the interface with it. Exited with the interface gone,
	 * it was stopped or the interface deleted: either may have gone first. */
	if (info.si_pid && (info.si_code != CLD_EXITED || !link_gone))
		snprintf(why, size, "the userspace WireGuard of %s (pid %ld) %s", d->ifname,
			 (long)d->userspace_pid, status);
	else if (info.si_pid)
		snprintf(why, size, "interface %s is gone and its userspace WireGuard (pid %ld) %s",
			 d->ifname, (long)d->userspace_pid, status);
	else
		snprintf(why, size, "interface %s was deleted (or moved to another network namespace)",
			 d->ifname);
}

static void unwatch(struct device *d)
{
	if (!d->loop)
		return;
	if (d->pidfd >= 0)
		loop_del(d->loop, d->pidfd);
	if (d->link_events >= 0) {
		loop_del(d->loop, d->link_events);
		close(d->link_events);
		d->link_events = -1;
	}
	d->loop = NULL;
}

static void lose(struct device *d)
{
	char why[256];
	device_lost_fn *lost = d->lost;

	explain_loss(d, why, sizeof(why));
	unwatch(d);
	lost(d->lost_data, why);
}

static void on_userspace_exit(struct loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)fd;
	(void)events;
	lose(data);
}

/* Reads link notifications: the loss of ours is the only one that matters.
 * When the socket overflowed, notifications were lost: the interface is
 * looked up instead. */
static void on_link_event(struct loop *l, int fd, unsigned events, void *data)
{
	struct device *d = data;
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO))), name[IF_NAMESIZE];
	bool gone = false;
	ssize_t n;

	(void)l;
	(void)events;
	while (!gone && (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			gone = !if_indextoname((unsigned)d->ifindex, name);
			continue;
		}
		if (n < 0)
			break;
		for (const struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			const struct ifinfomsg *ifi = NLMSG_DATA(h);

			if (h->nlmsg_type == RTM_DELLINK &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(*ifi)) && ifi->ifi_index == d->ifindex)
				gone = true;
		}
	}
	/* A DELLINK of a bridge port or the like leaves the interface there. */
	if (gone && !if_indextoname((unsigned)d->ifindex, name))
		lose(d);
}

static int open_link_events(struct errbuf *e)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);

	if (fd < 0)
		return errbuf_set(e, -errno, "cannot open a netlink socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = errbuf_set(e, -errno, "cannot listen to link notifications: %s",
				   strerror(errno));

		close(fd);
		return r;
	}
	return fd;
}

int device_watch(struct device *d, struct loop *l, device_lost_fn *lost, void *data,
		 struct errbuf *e)
{
	char name[IF_NAMESIZE];
	int r;

	d->lost = lost;
	d->lost_data = data;
	d->link_events = open_link_events(e);
	if (d->link_events < 0)
		return d->link_events;
	d->loop = l;
	r = loop_add(l, d->link_events, LOOP_READ, on_link_event, d);
	if (r == 0 && d->pidfd >= 0)
		r = loop_add(l, d->pidfd, LOOP_READ, on_userspace_exit, d);
	if (r < 0) {
		unwatch(d);
		return errbuf_set(e, r, "watching %s: %s", d->ifname, strerror(-r));
	}
	/* Subscribed now: a loss before this point is seen here. */
	if (!if_indextoname((unsigned)d->ifindex, name))
		return errbuf_set(e, -ENODEV, "interface %s vanished while starting", d->ifname);
	return 0;
}

void device_down(struct device *d)
{
	if (!d)
		return;
	unwatch(d);
	/* Stopping wireguard-go closes its TUN, which removes the interface. */
	stop_userspace(d);
	if (d->pidfd >= 0)
		close(d->pidfd);
	if (d->ifindex)
		link_delete(d->nl, d->ifindex);
	link_close(d->nl);
	free(d);
}
