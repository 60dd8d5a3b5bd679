/*-------------------------------------------------------------------------
 *
 * floor.c
 *	  The floor for deploying one migration to many databases: a bare
 *	  asynchronous libpq loop, used by test/bench/deploy.sh.
 *
 * Reads database names from standard input, one a line, and sends the
 * same SQL to each, with at most P connections open at once.  Each
 * connection is set up with PQconnectStartParams/PQconnectPoll and the SQL
 * sent with PQsendQuery on a non-blocking connection; one poll() waits
 * for whichever of the P sockets is ready.  A database is done once its
 * results are read, and its slot then starts the next database.
 *
 * One round trip per database (the SQL as one simple query, so one
 * implicit transaction), no ledger, no checks: nothing a migration tool
 * could leave out.  Host, port and user come from the PG* environment
 * variables.  Errors are reported on stderr; the exit status is 1 if any
 * database failed.
 *
 *	  floor P 'SQL' < database-names
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  test/bench/floor.c
 *
 *-------------------------------------------------------------------------
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#define MAX_PARALLEL 64
#define MAX_NAME 256

typedef enum SlotState
{
	SLOT_IDLE,
	SLOT_CONNECTING,
	SLOT_QUERYING
} SlotState;

typedef struct Slot
{
	SlotState	state;
	PGconn	   *conn;
	char		dbname[MAX_NAME];
	short		events;			/* what poll() should wait for */
	int			failed;			/* an error result was read */
} Slot;

static const char *sql;
static int	failures = 0;

/* Reads the next database name into buf; false at the end of input. */
static int
next_database(char *buf)
{
	size_t		len;

	while (fgets(buf, MAX_NAME, stdin) != NULL)
	{
		len = strcspn(buf, "\r\n");
		buf[len] = '\0';
		if (len > 0)
			return 1;
	}
	return 0;
}

static void start(Slot *s);

/* Reports a failed database; its slot moves on to the next one. */
static void
fail(Slot *s, const char *what)
{
	fprintf(stderr, "floor: %s: %s: %s", s->dbname, what, PQerrorMessage(s->conn));
	failures++;
	PQfinish(s->conn);
	s->conn = NULL;
	start(s);
}

/* Starts connecting to the next database, or leaves the slot idle. */
static void
start(Slot *s)
{
	const char *keywords[] = {"dbname", NULL};
	const char *values[] = {s->dbname, NULL};

	s->state = SLOT_IDLE;
	while (next_database(s->dbname))
	{
		s->conn = PQconnectStartParams(keywords, values, 0);
		if (s->conn == NULL)
		{
			fprintf(stderr, "floor: out of memory\n");
			exit(1);
		}
		if (PQstatus(s->conn) != CONNECTION_BAD)
		{
			s->state = SLOT_CONNECTING;
			s->failed = 0;
			s->events = POLLOUT;	/* PQconnectPoll's first wish: write */
			return;
		}
		fprintf(stderr, "floor: %s: connect: %s", s->dbname, PQerrorMessage(s->conn));
		failures++;
		PQfinish(s->conn);
		s->conn = NULL;
	}
}

/*
 * Sends what is queued; sets what to wait for next.  False if the
 * connection failed (the slot has moved on).
 */
static int
flush(Slot *s)
{
	int			r = PQflush(s->conn);

	if (r < 0)
	{
		fail(s, "send");
		return 0;
	}
	s->events = (r == 1) ? (POLLIN | POLLOUT) : POLLIN;
	return 1;
}

/* Moves a slot on after poll() said its socket is ready. */
static void
advance(Slot *s)
{
	PGresult   *res;

	if (s->state == SLOT_CONNECTING)
	{
		switch (PQconnectPoll(s->conn))
		{
			case PGRES_POLLING_READING:
				s->events = POLLIN;
				return;
			case PGRES_POLLING_WRITING:
				s->events = POLLOUT;
				return;
			case PGRES_POLLING_FAILED:
				fail(s, "connect");
				return;
			default:			/* PGRES_POLLING_OK */
				break;
		}
		if (PQsetnonblocking(s->conn, 1) != 0 || !PQsendQuery(s->conn, sql))
		{
			fail(s, "send");
			return;
		}
		s->state = SLOT_QUERYING;
		(void) flush(s);
		return;
	}

	/* SLOT_QUERYING */
	if ((s->events & POLLOUT) && !flush(s))
		return;
	if (!PQconsumeInput(s->conn))
	{
		fail(s, "receive");
		return;
	}
	while (!PQisBusy(s->conn))
	{
		res = PQgetResult(s->conn);
		if (res == NULL)
		{
			/* all results read: this database is done */
			if (s->failed)
				failures++;
			PQfinish(s->conn);
			s->conn = NULL;
			start(s);
			return;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
			PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "floor: %s: %s", s->dbname, PQresultErrorMessage(res));
			s->failed = 1;
		}
		PQclear(res);
	}
}

int
main(int argc, char **argv)
{
	Slot		slots[MAX_PARALLEL];
	struct pollfd fds[MAX_PARALLEL];
	int			map[MAX_PARALLEL];
	int			parallel;
	int			i;

	if (argc != 3 || (parallel = atoi(argv[1])) < 1 || parallel > MAX_PARALLEL)
	{
		fprintf(stderr, "usage: floor P SQL < database-names  (1 <= P <= %d)\n", MAX_PARALLEL);
		return 2;
	}
	sql = argv[2];

	for (i = 0; i < parallel; i++)
	{
		slots[i].conn = NULL;
		start(&slots[i]);
	}

	for (;;)
	{
		int			n = 0;

		/* the socket can change while connecting: read it every time */
		for (i = 0; i < parallel; i++)
		{
			if (slots[i].state == SLOT_IDLE)
				continue;
			fds[n].fd = PQsocket(slots[i].conn);
			fds[n].events = slots[i].events;
			fds[n].revents = 0;
			map[n++] = i;
		}
		if (n == 0)
			break;
		if (poll(fds, n, -1) < 0)
		{
			perror("floor: poll");
			return 1;
		}
		for (i = 0; i < n; i++)
		{
			if (fds[i].revents != 0)
				advance(&slots[map[i]]);
		}
	}
	return failures > 0 ? 1 : 0;
}
