#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "wgrp/control.h"
#include "wgrp/log.h"
#include "wgrp/ratelimit.h"

/* After accept() failed for want of fds or memory: a level-triggered
 * listener would wake the loop at once again. */
#define ACCEPT_PAUSE_MS 1000
/* The largest answer a client reads: a status of thousands of mappings. */
#define ANSWER_MAX (64u << 20)

enum request_state {
	READING,  /* the request, until its newline or the end */
	HANDLING, /* a handler's: not watched, not timed */
	WRITING,  /* the answer, then closed */
};

struct control_request {
	struct control_server *srv;
	size_t slot;
	int fd;
	enum request_state state;
	char buf[CONTROL_REQUEST_MAX];
	size_t len;
	json_t *args;
	char *answer;
	size_t answer_len, sent;
	struct loop_timer timer;
};

struct control_server {
	struct loop *loop;
	const char *program;
	const struct control_command *commands;
	size_t n_commands;
	void *data;
	char path[CONTROL_PATH_LEN];
	dev_t dev; /* of the socket file we made, to remove only ours */
	ino_t ino;
	int fd;
	bool paused;
	struct loop_timer pause_timer;
	struct ratelimit refusal_log; /* clients not root */
	struct control_request *clients[CONTROL_MAX_CLIENTS];
};

void control_path(char out[CONTROL_PATH_LEN], const char *ifname)
{
	snprintf(out, CONTROL_PATH_LEN, "%s/%s.sock", CONTROL_DIR, ifname);
}

static size_t n_clients(const struct control_server *s)
{
	size_t n = 0;

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		n += s->clients[i] != NULL;
	return n;
}

/* The listener waits for clients while there is room for one. */
static void update_listener(struct control_server *s)
{
	bool room = !s->paused && n_clients(s) < CONTROL_MAX_CLIENTS;

	loop_set_events(s->loop, s->fd, room ? LOOP_READ : 0);
}

static void drop(struct control_request *req)
{
	struct control_server *s = req->srv;

	loop_timer_stop(s->loop, &req->timer);
	loop_close(s->loop, req->fd);
	json_decref(req->args);
	free(req->answer);
	s->clients[req->slot] = NULL;
	free(req);
	update_listener(s);
}

int control_request_parse(const char *buf, size_t len, json_t **out, const char **command,
			  struct errbuf *e)
{
	json_error_t err;
	json_t *root, *cmd;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return errbuf_set(e, -EINVAL, "not JSON: %s at byte %d", err.text, err.position);
	cmd = json_object_get(root, "command");
	if (!json_is_object(root) || !json_is_string(cmd)) {
		json_decref(root);
		return errbuf_set(e, -EINVAL, "expected an object with a string \"command\"");
	}
	*out = root;
	*command = json_string_value(cmd);
	return 0;
}

static void send_answer(struct control_request *req)
{
	ssize_t n;

	while (req->sent < req->answer_len) {
		n = send(req->fd, req->answer + req->sent, req->answer_len - req->sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			log_debug("control client: %s: dropped", strerror(errno));
			break;
		}
		req->sent += (size_t)n;
	}
	drop(req);
}

void control_reply(struct control_request *req, json_t *answer)
{
	char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;

	json_decref(answer);
	if (!text) {
		text = strdup("{\"success\":false,\"message\":\"out of memory\"}");
		len = text ? strlen(text) : 0;
	}
	if (!text) {
		drop(req);
		return;
	}
	/* One line, for clients that read lines. */
	text[len] = '\n';
	req->answer = text;
	req->answer_len = len + 1;
	req->state = WRITING;
	loop_set_events(req->srv->loop, req->fd, LOOP_WRITE);
	loop_timer_start(req->srv->loop, &req->timer, CONTROL_TIMEOUT_MS);
	send_answer(req);
}

void control_reply_error(struct control_request *req, const char *fmt, ...)
{
	char msg[ERRBUF_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	control_reply(req, json_pack("{s:b, s:s}", "success", 0, "message", msg));
}

const json_t *control_request_args(const struct control_request *req)
{
	return req->args;
}

/* The request is complete: to its command's handler. */
static void dispatch(struct control_request *req)
{
	struct control_server *s = req->srv;
	char q[QUOTED_MAX], known[256] = "";
	const char *command;
	struct errbuf e;

	if (control_request_parse(req->buf, req->len, &req->args, &command, &e) < 0) {
		control_reply_error(req, "invalid request: %s", e.msg);
		return;
	}
	for (size_t i = 0; i < s->n_commands; i++) {
		if (!strcmp(s->commands[i].name, command)) {
			req->state = HANDLING;
			loop_set_events(s->loop, req->fd, 0);
			loop_timer_stop(s->loop, &req->timer);
			s->commands[i].fn(s->data, req);
			return;
		}
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
			 s->commands[i].name);
	}
	control_reply_error(req, "unknown command %s (%s knows: %s)", quote(q, command), s->program,
			    known);
}

static void read_request(struct control_request *req)
{
	const char *nl;
	ssize_t n;

	n = recv(req->fd, req->buf + req->len, sizeof(req->buf) - req->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		log_debug("control client: %s: dropped", strerror(errno));
		drop(req);
		return;
	}
	if (n == 0 && req->len == 0) {
		/* Nothing asked: a probe such as a starting daemon's. */
		drop(req);
		return;
	}
	nl = memchr(req->buf + req->len, '\n', (size_t)n);
	req->len += (size_t)n;
	if (nl)
		req->len = (size_t)(nl - req->buf);
	if (nl || n == 0)
		dispatch(req);
	else if (req->len == sizeof(req->buf))
		control_reply_error(req, "request longer than %d bytes", CONTROL_REQUEST_MAX);
}

static void on_client(struct loop *l, int fd, unsigned events, void *data)
{
	struct control_request *req = data;

	(void)l;
	(void)fd;
	(void)events;
	if (req->state == READING)
		read_request(req);
	else if (req->state == WRITING)
		send_answer(req);
}

static void on_client_timeout(struct loop *l, struct loop_timer *t)
{
	struct control_request *req = t->data;

	(void)l;
	log_debug("control client %s within %d s: dropped",
		  req->state == READING ? "sent no complete request" : "did not read its answer",
		  CONTROL_TIMEOUT_MS / 1000);
	drop(req);
}

/* Only root may ask: the socket's mode says so already, unless someone
 * changed it, or a process holds CAP_DAC_OVERRIDE without being root. */
static bool allowed(struct control_server *s, int fd)
{
	struct ucred cred = { .pid = -1, .uid = (uid_t)-1 };
	socklen_t len = sizeof(cred);
	unsigned held;
	static const char refusal[] =
		"{\"success\":false,\"message\":\"permission denied: only root may use this "
		"socket\"}\n";

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0)
		return true;
	if (ratelimit_allow(&s->refusal_log, loop_now(s->loop), &held))
		log_warning("control socket %s: refused a client of uid %d (pid %d): only root may "
			    "use it%s",
			    s->path, (int)cred.uid, (int)cred.pid, held ? " (more refusals not logged)" : "");
	/* Best effort: the client may not read it. */
	(void)send(fd, refusal, sizeof(refusal) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	return false;
}

static void on_pause_end(struct loop *l, struct loop_timer *t)
{
	struct control_server *s = t->data;

	(void)l;
	s->paused = false;
	update_listener(s);
}

static int add_client(struct control_server *s, int fd)
{
	struct control_request *req;
	size_t slot = 0;

	while (s->clients[slot])
		slot++;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	*req = (struct control_request){ .srv = s, .slot = slot, .fd = fd, .state = READING };
	loop_timer_init(&req->timer, on_client_timeout, req);
	if (loop_add(s->loop, fd, LOOP_READ, on_client, req) < 0 ||
	    loop_timer_start(s->loop, &req->timer, CONTROL_TIMEOUT_MS) < 0) {
		loop_del(s->loop, fd);
		free(req);
		return -ENOMEM;
	}
	s->clients[slot] = req;
	return 0;
}

static void on_accept(struct loop *l, int fd, unsigned events, void *data)
{
	struct control_server *s = data;
	int c;

	(void)events;
	while (n_clients(s) < CONTROL_MAX_CLIENTS) {
		c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (c < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (c < 0) {
			log_debug("control socket: accept: %s; pausing for %d ms", strerror(errno),
				  ACCEPT_PAUSE_MS);
			s->paused = true;
			loop_timer_start(l, &s->pause_timer, ACCEPT_PAUSE_MS);
			break;
		}
		if (!allowed(s, c) || add_client(s, c) < 0)
			close(c);
	}
	update_listener(s);
}

/* A socket file at path: a running daemon's (it accepts), or left by one
 * that was killed (refused), which is removed. */
static int claim_path(const struct control_server *s, const char *ifname, struct errbuf *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(s->path, &st) < 0)
		return errno == ENOENT ? 0 : errbuf_set(e, -errno, "%s: %s", s->path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errbuf_set(e, -EEXIST, "%s exists and is not a socket: remove it", s->path);
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf_set(e, -errno, "control socket: %s", strerror(errno));
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	close(fd);
	if (r == 0 || r == -EAGAIN)
		return errbuf_set(e, -EADDRINUSE,
				  "another rps or rpc is running on interface %s: it answers on %s",
				  ifname, s->path);
	if (r != -ECONNREFUSED)
		return errbuf_set(e, r, "%s: %s", s->path, strerror(-r));
	log_warning("removing %s, left by an earlier %s that did not remove it", s->path,
		    s->program);
	if (unlink(s->path) < 0 && errno != ENOENT)
		return errbuf_set(e, -errno, "cannot remove %s: %s", s->path, strerror(errno));
	return 0;
}

static int make_dir(struct errbuf *e)
{
	struct stat st;

	if (mkdir(CONTROL_DIR, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return errbuf_set(e, -errno, "cannot create %s: %s", CONTROL_DIR, strerror(errno));
	if (lstat(CONTROL_DIR, &st) < 0)
		return errbuf_set(e, -errno, "%s: %s", CONTROL_DIR, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errbuf_set(e, -ENOTDIR, "%s exists and is not a directory", CONTROL_DIR);
	return 0;
}

static int listen_on(struct control_server *s, const char *ifname, struct errbuf *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int r;

	r = make_dir(e);
	if (r == 0)
		r = claim_path(s, ifname, e);
	if (r < 0)
		return r;
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return errbuf_set(e, -errno, "control socket: %s", strerror(errno));
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errbuf_set(e, -errno, "cannot bind the control socket %s: %s", s->path,
				  strerror(errno));
	/* The directory keeps others out until the mode is set. */
	if (chmod(s->path, 0600) < 0 || stat(s->path, &st) < 0 || listen(s->fd, 16) < 0)
		r = -errno;
	if (r < 0) {
		errbuf_set(e, r, "control socket %s: %s", s->path, strerror(-r));
		unlink(s->path);
		return r;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

int control_server_new(struct control_server **out, struct loop *l, const char *ifname,
		       const char *program, const struct control_command *commands,
		       size_t n_commands, void *data, struct errbuf *e)
{
	struct control_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return errbuf_set(e, -ENOMEM, "control socket: out of memory");
	*s = (struct control_server){ .loop = l, .program = program, .commands = commands,
				      .n_commands = n_commands, .data = data, .fd = -1,
				      .refusal_log = RATELIMIT_INIT(RATELIMIT_WARNING_INTERVAL_MS,
								    RATELIMIT_WARNING_BURST) };
	loop_timer_init(&s->pause_timer, on_pause_end, s);
	control_path(s->path, ifname);
	r = listen_on(s, ifname, e);
	if (r == 0 && loop_add(l, s->fd, LOOP_READ, on_accept, s) < 0)
		r = errbuf_set(e, -ENOMEM, "control socket: out of memory");
	if (r < 0) {
		s->ino = 0;
		control_server_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void control_server_free(struct control_server *s)
{
	struct stat st;

	if (!s)
		return;
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (s->clients[i])
			drop(s->clients[i]);
	loop_timer_stop(s->loop, &s->pause_timer);
	if (s->fd >= 0)
		loop_close(s->loop, s->fd);
	/* Another daemon may have replaced a file we thought stale meanwhile. */
	if (s->ino && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}

/* The client's side. */

static int connect_to(const char *path, const char *program, const char *ifname,
		      int timeout_ms, struct errbuf *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };
	int fd, r;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf_set(e, -errno, "cannot create a socket: %s", strerror(errno));
	/* Bounds the connect (a full backlog), each send and each read. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		if (r == -ENOENT)
			return errbuf_set(e, r, "no %s is running on %s (no %s)", program, ifname, path);
		if (r == -ECONNREFUSED)
			return errbuf_set(e, r, "no %s is running on %s (%s is left from one that was "
					  "killed)", program, ifname, path);
		if (r == -EACCES || r == -EPERM)
			return errbuf_set(e, r, "permission denied on %s: only root may ask %s",
					  path, program);
		if (r == -EAGAIN || r == -EINPROGRESS)
			return errbuf_set(e, -ETIMEDOUT, "%s on %s is not answering on %s", program,
					  ifname, path);
		return errbuf_set(e, r, "cannot connect to %s: %s", path, strerror(-r));
	}
	return fd;
}

/* Reads the answer to its end; returns its length, or a negative errno. */
static ssize_t read_answer(int fd, char **out)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *more;
	ssize_t n;

	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			more = cap <= ANSWER_MAX ? realloc(buf, cap) : NULL;
			if (!more) {
				free(buf);
				return cap > ANSWER_MAX ? -EMSGSIZE : -ENOMEM;
			}
			buf = more;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		/* The daemon answered and closed with our request unread (it
		 * refused us): the reset comes after its answer. */
		if (n < 0 && errno == ECONNRESET && len)
			break;
		if (n < 0) {
			n = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
			free(buf);
			return n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	return (ssize_t)len;
}

int control_call(const char *program, const char *ifname, const char *command, int timeout_ms,
		 json_t **answer, struct errbuf *e)
{
	char path[CONTROL_PATH_LEN], *text = NULL, *request = NULL;
	json_t *request_obj, *root = NULL, *ok, *msg;
	json_error_t err;
	ssize_t len;
	int fd, r = 0;

	control_path(path, ifname);
	fd = connect_to(path, program, ifname, timeout_ms, e);
	if (fd < 0)
		return fd;
	request_obj = json_pack("{s:s}", "command", command);
	request = request_obj ? json_dumps(request_obj, JSON_COMPACT) : NULL;
	json_decref(request_obj);
	if (!request) {
		r = errbuf_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	/* A daemon that refuses us may close before we sent all: its answer
	 * says why. */
	if ((send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 ||
	     send(fd, "\n", 1, MSG_NOSIGNAL) < 0) &&
	    errno != EPIPE && errno != ECONNRESET) {
		r = errbuf_set(e, -errno, "%s on %s: sending the request: %s", program, ifname,
			       strerror(errno));
		goto out;
	}
	len = read_answer(fd, &text);
	if (len < 0) {
		r = (int)len;
		if (r == -ETIMEDOUT)
			errbuf_set(e, r, "%s on %s did not answer within %d s", program, ifname,
				   timeout_ms / 1000);
		else
			errbuf_set(e, r, "%s on %s: reading the answer: %s", program, ifname,
				   strerror(-r));
		goto out;
	}
	root = json_loadb(text, (size_t)len, 0, &err);
	ok = json_object_get(root, "success");
	msg = json_object_get(root, "message");
	if (!json_is_object(root) || !json_is_boolean(ok) || !json_is_string(msg)) {
		r = errbuf_set(e, -EPROTO, "%s on %s answered %s", program, ifname,
			       len ? "something unreadable" : "nothing");
		goto out;
	}
	if (!json_is_true(ok)) {
		r = errbuf_set(e, -EPROTO, "%s on %s: %s", program, ifname, json_string_value(msg));
		goto out;
	}
	*answer = root;
	root = NULL;
out:
	json_decref(root);
	free(text);
	free(request);
	close(fd);
	return r;
}
