/* bcae repair: drop the incomplete tail that an interrupted compress or
 * compress --append leaves, so that the file is complete again. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae repair FILE.bcae\n"
            "Make a .bcae container that an interrupted 'compress --append' (or a crash,\n"
            "or a copy cut short) left without its end marker complete again: every record\n"
            "is verified (both CRCs, zstd decoding), the file is cut after the last intact\n"
            "record, and an end marker is written there. The records dropped are the torn\n"
            "tail only; their wedges must be compressed again.\n"
            "A complete file is verified and left unchanged. A file damaged in any other\n"
            "way (a CRC mismatch, a bad field) is refused, not cut: dropping records that\n"
            "are present but corrupt is not a repair. The file is changed in place, under\n"
            "the same lock as an appender; a crash during the repair leaves it torn and\n"
            "repairable again, never half repaired.\n"
            "\n"
            "  -h, --help  show this help\n"
            "Exit status: 0 repaired or already complete, 1 failure (refused), 2 bad usage.\n");
}

int verb_repair(int argc, char **argv)
{
    const char *verb = "repair";
    const char *path = NULL;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (!strcmp(arg, "--")) {
                options_done = 1;
            } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
                usage(stdout);
                return CLI_EXIT_OK;
            } else {
                return cli_usage_error(verb, "unknown option '%s'", arg);
            }
        } else if (!path) {
            path = arg;
        } else {
            return cli_usage_error(verb, "too many arguments ('%s')", arg);
        }
    }
    if (!path) return cli_usage_error(verb, "expected FILE.bcae");

    bcae_error err;
    bcae_ctr_repair_report rep;
    if (bcae_ctr_repair(path, &rep, &err)) {
        cli_fail(verb, &err);
        return CLI_EXIT_FAIL;
    }
    if (rep.was_complete)
        printf("complete        %s: %llu records, %llu bytes, all intact; nothing to do\n", path,
               (unsigned long long)rep.records, (unsigned long long)rep.file_bytes);
    else
        printf("repaired        %s: kept %llu intact records (%llu bytes with the new end "
               "marker), dropped an incomplete tail of %llu bytes\n",
               path, (unsigned long long)rep.records, (unsigned long long)rep.file_bytes,
               (unsigned long long)rep.dropped_bytes);
    return CLI_EXIT_OK;
}
