#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wgrp/api_client.h"
#include "wgrp/auth.h"

/* Answers of the API are small; more is not read. */
#define MAX_ANSWER (64 * 1024)
/* Connections to the server at a time: half of what rps allows a peer, so
 * that none is ever refused; requests beyond wait in curl's queue. */
#define MAX_CONNECTIONS 4

struct api_client {
	struct loop *loop;
	CURLM *multi;
	char base_url[80];
	char interface[8 + INET6_ADDRSTRLEN]; /* "host!ADDR": the source address */
	const uint8_t *key;
	struct loop_timer timer;
	struct request *requests; /* in flight */
};

struct request {
	struct request *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	char *answer;
	size_t answer_len;
	api_done_fn *done;
	void *data;
	char error[CURL_ERROR_SIZE];
};

static void free_request(struct api_client *c, struct request *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (c->requests == r)
		c->requests = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (r->easy) {
		curl_multi_remove_handle(c->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r->answer);
	free(r);
}

static void finish(struct api_client *c, CURL *easy, CURLcode result)
{
	struct request *r;
	long status = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	if (result == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	else if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(result));
	/* Off the multi handle before the callback, which may start requests. */
	curl_multi_remove_handle(c->multi, easy);
	r->done(r->data, status, r->answer ? r->answer : "", r->answer_len, r->error);
	free_request(c, r);
}

static void drain(struct api_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			finish(c, msg->easy_handle, msg->data.result);
}

static void on_socket_ready(struct loop *l, int fd, unsigned events, void *data)
{
	struct api_client *c = data;
	int running, mask = 0;

	(void)l;
	if (events & LOOP_READ)
		mask |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		mask |= CURL_CSELECT_OUT;
	if (events & LOOP_ERROR)
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, mask, &running);
	drain(c);
}

static void on_timer(struct loop *l, struct loop_timer *t)
{
	struct api_client *c = t->data;
	int running;

	(void)l;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(c);
}

/* curl says which of its sockets to watch for what. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct api_client *c = userp;
	unsigned events = (what & CURL_POLL_IN ? LOOP_READ : 0u) | (what & CURL_POLL_OUT ? LOOP_WRITE : 0u);

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		loop_del(c->loop, fd);
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (!socketp) {
		if (loop_add(c->loop, fd, events, on_socket_ready, c) < 0)
			return -1;
		curl_multi_assign(c->multi, fd, c);
		return 0;
	}
	return loop_set_events(c->loop, fd, events) < 0 ? -1 : 0;
}

static int on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
	struct api_client *c = userp;

	(void)multi;
	if (timeout_ms < 0)
		loop_timer_stop(c->loop, &c->timer);
	else
		loop_timer_start(c->loop, &c->timer, (uint64_t)timeout_ms);
	return 0;
}

static size_t on_data(char *ptr, size_t size, size_t n, void *userp)
{
	struct request *r = userp;
	size_t len = size * n, take = len;
	char *grown;

	if (r->answer_len + take > MAX_ANSWER)
		take = MAX_ANSWER - r->answer_len;
	grown = realloc(r->answer, r->answer_len + take + 1);
	if (!grown)
		return 0;
	memcpy(grown + r->answer_len, ptr, take);
	r->answer = grown;
	r->answer_len += take;
	r->answer[r->answer_len] = '\0';
	return len;
}

int api_client_new(struct api_client **out, struct loop *l, const char *base_url,
		   const struct ip_addr *source, const uint8_t *key)
{
	char addr[INET6_ADDRSTRLEN];
	struct api_client *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->multi = curl_multi_init())) {
		free(c);
		return -ENOMEM;
	}
	c->loop = l;
	c->key = key;
	snprintf(c->base_url, sizeof(c->base_url), "%s", base_url);
	ip_addr_format(source, addr, sizeof(addr));
	snprintf(c->interface, sizeof(c->interface), "host!%s", addr);
	loop_timer_init(&c->timer, on_timer, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)MAX_CONNECTIONS);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)MAX_CONNECTIONS);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTIONS);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	*out = c;
	return 0;
}

void api_client_free(struct api_client *c)
{
	if (!c)
		return;
	while (c->requests)
		free_request(c, c->requests);
	curl_multi_cleanup(c->multi);
	loop_timer_stop(c->loop, &c->timer);
	free(c);
}

/* The signature headers of a request, added to r->headers. */
static int sign(struct api_client *c, struct request *r, const char *method, const char *target)
{
	char ts[24], nonce[AUTH_NONCE_HEX_LEN + 1], sig[AUTH_MAC_HEX_LEN + 1];
	char line[sizeof(AUTH_HEADER_SIGNATURE) + AUTH_MAC_HEX_LEN + 4];
	const char *headers[][2] = { { AUTH_HEADER_TIMESTAMP, ts },
				     { AUTH_HEADER_NONCE, nonce },
				     { AUTH_HEADER_SIGNATURE, sig } };
	struct curl_slist *grown;
	int err = auth_sign(ts, nonce, sig, c->key, method, target, r->body,
			    r->body ? strlen(r->body) : 0, (int64_t)time(NULL));

	if (err < 0)
		return err;
	for (size_t i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "%s: %s", headers[i][0], headers[i][1]);
		grown = curl_slist_append(r->headers, line);
		if (!grown)
			return -ENOMEM;
		r->headers = grown;
	}
	return 0;
}

int api_client_request(struct api_client *c, const char *method, const char *target,
		       const char *body, long timeout_ms, api_done_fn *done, void *data)
{
	struct request *r = calloc(1, sizeof(*r));
	char url[sizeof(c->base_url) + 128];

	if (!r)
		return -ENOMEM;
	r->done = done;
	r->data = data;
	r->easy = curl_easy_init();
	if (!r->easy || (body && !(r->body = strdup(body))))
		goto oom;
	r->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!r->headers || (c->key && sign(c, r, method, target) < 0))
		goto oom;
	snprintf(url, sizeof(url), "%s%s", c->base_url, target);
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	/* From the tunnel address, straight to the server: never through a
	 * proxy the environment names (http_proxy and the like). */
	curl_easy_setopt(r->easy, CURLOPT_INTERFACE, c->interface);
	curl_easy_setopt(r->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(r->easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	if (r->body) {
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	}
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	r->next = c->requests;
	if (r->next)
		r->next->prev = r;
	c->requests = r;
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
		goto oom;
	return 0;
oom:
	free_request(c, r);
	return -ENOMEM;
}
