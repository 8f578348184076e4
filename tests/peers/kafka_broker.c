/*
 * tests/peers/kafka_broker.c: a Kafka cluster for tests and benchmarks, on librdkafka's mock
 * cluster (librdkafka/rdkafka_mock.h): the Kafka protocol over TCP on random loopback ports,
 * in memory, in this one process. No Kafka broker is packaged in Debian; kcat, python3-kafka
 * and librdkafka clients all talk to this one.
 *
 *   kafka_broker [--brokers N] [--topic T [--partitions P]]... [--refuse-topic T]...
 *                [--bootstrap-file FILE]
 *
 * Starts N brokers (default 1; ids 1..N), creates each --topic with P partitions (default 4;
 * replication factor min(N, 3)), prints the bootstrap list ("127.0.0.1:PORT,...") as one line
 * on stdout and flushes it, and writes it to FILE when asked (atomically: readers never see a
 * partial line). Then it waits for signals:
 *
 *   SIGUSR1  every broker goes down: connections are closed and new ones refused (a Kafka
 *            outage as a client sees it; the data stays)
 *   SIGUSR2  every broker comes back up
 *   SIGTERM, SIGINT  exit 0
 *
 * Each transition is reported on stderr ("kafka_broker: brokers down"). Signals are read from
 * a signalfd: they are blocked before librdkafka starts its threads, so no handler runs and
 * nothing happens inside one. Topics that clients name and that were not created here are
 * created by the mock cluster on first use (4 partitions), except those named by --refuse-topic:
 * metadata requests for them answer UNKNOWN_TOPIC_OR_PART, as a cluster without that topic and
 * without auto-creation does (a client configured with a wrong topic).
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_TOPICS 64

static int usage(void)
{
    fprintf(stderr, "usage: kafka_broker [--brokers N] [--topic T [--partitions P]]... "
                    "[--refuse-topic T]... [--bootstrap-file FILE]\n");
    return 2;
}

/* Parses a whole positive number up to max; -1 when it is not one. */
static long positive(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        return -1;
    return v;
}

/* Writes line to path through a temporary file and a rename. */
static int write_file(const char *path, const char *line)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return -1;
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return -1;
    int ok = fprintf(fp, "%s\n", line) > 0;
    ok &= fclose(fp) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void set_all(rd_kafka_mock_cluster_t *mc, int brokers, int up)
{
    for (int id = 1; id <= brokers; id++) {
        rd_kafka_resp_err_t e =
            up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
        if (e)
            fprintf(stderr, "kafka_broker: broker %d %s: %s\n", id, up ? "up" : "down",
                    rd_kafka_err2str(e));
    }
    fprintf(stderr, "kafka_broker: brokers %s\n", up ? "up" : "down");
}

int main(int argc, char **argv)
{
    long brokers = 1;
    const char *topics[MAX_TOPICS];
    long partitions[MAX_TOPICS];
    int ntopics = 0;
    const char *refused[MAX_TOPICS];
    int nrefused = 0;
    const char *bootstrap_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "kafka_broker: %s needs a value\n", a);
            return usage();
        }
        i++;
        if (strcmp(a, "--brokers") == 0) {
            if ((brokers = positive(v, 64)) < 0) {
                fprintf(stderr, "kafka_broker: --brokers: '%s' is not 1..64\n", v);
                return usage();
            }
        } else if (strcmp(a, "--topic") == 0) {
            if (ntopics == MAX_TOPICS || !*v) {
                fprintf(stderr, "kafka_broker: --topic: empty, or more than %d topics\n",
                        MAX_TOPICS);
                return usage();
            }
            topics[ntopics] = v;
            partitions[ntopics++] = 4;
        } else if (strcmp(a, "--partitions") == 0) {
            long p = positive(v, 10000);
            if (ntopics == 0 || p < 0) {
                fprintf(stderr,
                        "kafka_broker: --partitions: '%s' is not 1..10000 after a "
                        "--topic\n",
                        v);
                return usage();
            }
            partitions[ntopics - 1] = p;
        } else if (strcmp(a, "--refuse-topic") == 0) {
            if (nrefused == MAX_TOPICS || !*v) {
                fprintf(stderr, "kafka_broker: --refuse-topic: empty, or more than %d\n",
                        MAX_TOPICS);
                return usage();
            }
            refused[nrefused++] = v;
        } else if (strcmp(a, "--bootstrap-file") == 0) {
            bootstrap_file = v;
        } else {
            fprintf(stderr, "kafka_broker: unknown argument '%s'\n", a);
            return usage();
        }
    }

    /* Block the signals before librdkafka starts threads, so that they all inherit the mask
     * and the signals wait in the signalfd for the loop below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        perror("kafka_broker: sigprocmask");
        return 1;
    }
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("kafka_broker: signalfd");
        return 1;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka_broker: rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!mc) {
        fprintf(stderr, "kafka_broker: cannot create a mock cluster of %ld brokers\n", brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    int rf = brokers < 3 ? (int)brokers : 3;
    for (int t = 0; t < ntopics; t++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[t], (int)partitions[t], rf);
        if (e) {
            fprintf(stderr, "kafka_broker: topic %s: %s\n", topics[t], rd_kafka_err2str(e));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    for (int t = 0; t < nrefused; t++)
        rd_kafka_mock_topic_set_error(mc, refused[t], RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (bootstrap_file && write_file(bootstrap_file, bootstraps) != 0) {
        fprintf(stderr, "kafka_broker: --bootstrap-file %s: %s\n", bootstrap_file, strerror(errno));
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("%s\n", bootstraps);
    fflush(stdout);
    fprintf(stderr, "kafka_broker: %ld broker%s at %s, %d topic%s created\n", brokers,
            brokers == 1 ? "" : "s", bootstraps, ntopics, ntopics == 1 ? "" : "s");

    int rc = 0;
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(si)) {
            perror("kafka_broker: read signalfd");
            rc = 1;
            break;
        }
        if (si.ssi_signo == SIGUSR1)
            set_all(mc, (int)brokers, 0);
        else if (si.ssi_signo == SIGUSR2)
            set_all(mc, (int)brokers, 1);
        else
            break;
    }
    fprintf(stderr, "kafka_broker: stopping\n");
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    close(sfd);
    return rc;
}
