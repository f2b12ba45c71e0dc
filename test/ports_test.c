#include <errno.h>

#include "test.h"
#include "wgrp/ports.h"

static void parses_lists_and_ranges(void **state)
{
	struct port_set s;

	(void)state;
	assert_int_equal(port_set_parse(&s, "80,443,8000-8002", NULL), 0);
	assert_true(port_set_has(&s, 80));
	assert_true(port_set_has(&s, 443));
	assert_true(port_set_has(&s, 8000));
	assert_true(port_set_has(&s, 8002));
	assert_false(port_set_has(&s, 8003));
	assert_false(port_set_has(&s, 81));
	assert_int_equal(port_set_parse(&s, "1-65535", NULL), 0);
	assert_true(port_set_has(&s, 1));
	assert_true(port_set_has(&s, 65535));
	assert_false(port_set_has(&s, 0));
}

static void assert_ports_error(const char *text, const char *msg)
{
	struct port_set s;
	struct errbuf e;

	assert_int_equal(port_set_parse(&s, text, &e), -EINVAL);
	assert_string_equal(e.msg, msg);
}

static void explains_bad_lists(void **state)
{
	(void)state;
	assert_ports_error("", "invalid port list \"\": empty entry");
	assert_ports_error("80,", "invalid port list \"80,\": empty entry");
	assert_ports_error("0-10", "invalid port list \"0-10\": \"0\" is out of range (1-65535)");
	assert_ports_error("10-", "invalid port list \"10-\": empty value, expected a number");
	assert_ports_error("9-1", "invalid port list \"9-1\": range 9-1 is backwards");
	assert_ports_error("http", "invalid port list \"http\": \"http\" is not a number");
	assert_ports_error("1-2-3", "invalid port list \"1-2-3\": \"2-3\" is not a number");
}

static void names_protocols_and_labels_ports(void **state)
{
	char buf[PORT_LABEL_LEN];
	int protocol = 0;

	(void)state;
	assert_int_equal(port_protocol_parse("udp", &protocol), 0);
	assert_int_equal(protocol, IPPROTO_UDP);
	assert_int_equal(port_protocol_parse("tcp", &protocol), 0);
	assert_int_equal(protocol, IPPROTO_TCP);
	assert_int_equal(port_protocol_parse("UDP", &protocol), -EINVAL);
	assert_int_equal(port_protocol_parse("", &protocol), -EINVAL);
	assert_string_equal(port_protocol_name(IPPROTO_UDP), "udp");
	assert_string_equal(port_protocol_name(IPPROTO_TCP), "tcp");
	/* TCP ports are named as the original names them, in its messages too. */
	assert_string_equal(port_label(buf, 3000, IPPROTO_TCP), "3000");
	assert_string_equal(port_label(buf, 65535, IPPROTO_UDP), "65535/udp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_lists_and_ranges),
		cmocka_unit_test(explains_bad_lists),
		cmocka_unit_test(names_protocols_and_labels_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
