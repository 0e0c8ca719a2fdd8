/* bcae: the command-line front end. One verb per file (tools/verb_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct verb {
    const char *name;
    bcae_verb_fn fn;
    const char *summary;
    int parallel; /* runs on several MPI ranks */
} verb;

static const verb VERBS[] = {
    {"simulate", verb_simulate, "simulate TPC events into a dataset of wedge .npy files", 0},
    {"stats", verb_stats, "statistics of a set of wedges; compare with another (e.g. real data)",
     0},
    {"inspect", verb_inspect, "a .npy file (shape, occupancy, histogram) or a .bcae container", 0},
    {"metrics", verb_metrics, "compare an original and a reconstructed wedge (MAE, PSNR, ...)", 0},
    {"plot", verb_plot, "draw a wedge as a PNG picture", 0},
    {"train", verb_train, "train a model (BCAE-2D, BCAE++, BCAE-HT, BCAE) on a dataset",
     1},
    {"threshold", verb_threshold, "choose the classifier threshold on validation data; store it",
     0},
    {"compress", verb_compress, "encode wedges into a .bcae container of fp16 codes", 1},
    {"decompress", verb_decompress, "decode a .bcae container into wedge .npy files", 1},
    {"repair", verb_repair, "complete a .bcae container an interrupted append left torn", 0},
    {"eval", verb_eval, "encode and decode a dataset split in memory; report metrics and ratio", 1},
    {"forward", verb_forward, "run a model on wedges and write code, heads and reconstruction", 0},
    {"bench", verb_bench, "time the encoder, decoders and a training step (wedges/s, GFLOP/s)", 0},
};

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae VERB [OPTIONS...]\n"
            "Compress TPC data with Bicephalous Convolutional Autoencoders.\n\n"
            "Verbs:\n");
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        fprintf(fp, "  %-10s %s\n", VERBS[i].name, VERBS[i].summary);
    fprintf(fp,
            "\n'bcae VERB --help' describes a verb's options.\n"
            "Threads: --threads N on verbs that use them, or BCAE_NUM_THREADS=N. Idle\n"
            "threads wait passively unless OMP_WAIT_POLICY (e.g. active) is set.\n"
            "Several processes (a build with MPI): mpirun -np N bcae train|compress|\n"
            "decompress|eval ... splits the work over N ranks (docs/SCALING.md).\n"
            "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

/* OpenMP threads that spin while they wait (libgomp's default) steal the
 * cores they share with anything else: measured here, a training step of
 * BCAE-2D(4,4,3) took 2-3x longer with one other busy process on the 2-core
 * machine. Waiting passively costs nothing measurable when the machine is
 * ours alone. libgomp reads the policy when it is loaded, so the only way to
 * change the default from inside is to set it and start again; an explicit
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT from the user is left alone. */
static void prefer_passive_wait(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* Exec the binary by its real path, not /proc/self/exe, so that ps and
     * pgrep still show the program as "bcae". */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
    execv(self, argv);
    /* If that failed, carry on with the default policy. */
}

int main(int argc, char **argv)
{
    prefer_passive_wait(argv);
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bcae %s\n", bcae_version());
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (!strcmp(argv[1], VERBS[i].name)) {
            int rc = cli_comm_start(&argc, &argv);
            if (rc) return rc;
            if (cli_size() > 1 && !VERBS[i].parallel) {
                if (cli_rank() == 0)
                    fprintf(stderr, "bcae %s: runs as one process; of the verbs only train, "
                                    "compress, decompress and eval run on several ranks "
                                    "(mpirun -np N)\n",
                            VERBS[i].name);
                return cli_comm_end(CLI_EXIT_USAGE);
            }
            return cli_comm_end(VERBS[i].fn(argc - 1, argv + 1));
        }
    fprintf(stderr, "bcae: unknown verb '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
