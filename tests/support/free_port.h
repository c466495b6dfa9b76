/* free_port: a port number for a server a test is about to start. */
#ifndef HD_TEST_FREE_PORT_H
#define HD_TEST_FREE_PORT_H

/* A port free on 127.0.0.1 for TCP and UDP, with the next span ports free
 * too, picked at random outside the kernel's ephemeral range: a number that
 * bind(0) handed out and the test released can go to another process's
 * bind(0) or outgoing connection before the server binds it; numbers outside
 * the range are only taken by explicit binds (tests/integration/hdtest.py
 * free_port is the same rule for the Python tests). -1 if none was found. */
int hd_test_free_port(int span);

#endif
