/* Placeholder while the verb is being written; replaced in this change. */
#include "cli.h"

int verb_metrics(int argc, char **argv)
{
    (void)argc;
    cli_error(argv[0], "not implemented yet");
    return CLI_EXIT_FAIL;
}
