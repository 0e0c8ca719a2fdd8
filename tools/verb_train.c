/* bcae train: train a BCAE-2D on a dataset. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include <stdio.h>

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae train --data DIR --out MODEL.safetensors [OPTIONS]\n"
            "Train a BCAE-2D(m, n, d), BCAE++, BCAE-HT or BCAE on the train split of DIR (train.txt, or outer/train.txt)\n"
            "with the focal + masked L1 losses, the dynamic coefficient, AdamW and the step\n"
            "learning-rate schedule of the paper. Validates on the test split after every\n"
            "epoch; rewrites MODEL and a checkpoint after every epoch.\n"
            "\n"
            "Model:\n"
            "      --arch A                   bcae-2d (default), bcae++, bcae-ht or bcae (the\n"
            "                                 original, raw-ADC input; docs/MODELS.md)\n"
            "      --m M --n N --d D          BCAE-2D: encoder blocks, decoder blocks,\n"
            "                                 samplings (4, 8, 3)\n"
            "      --features A,B,C,D         3D models: the four encoder widths (bcae++ and\n"
            "                                 bcae: 8,16,32,32; bcae-ht: 2,4,4,8)\n"
            "      --clf-threshold H          classification threshold (0.5)\n"
            "      --init MODEL.safetensors   start from these weights\n"
            "      --clf-bias-init P          start the classifier's output bias at logit(P),\n"
            "                                 e.g. 0.1 (default: PyTorch's initialisation)\n"
            "Schedule:\n"
            "      --num-epochs E             epochs (500; 3D models 1000)\n"
            "      --num-warmup-epochs W      epochs at the initial learning rate (50; 3D 100)\n"
            "      --sched-steps S            then x gamma every S epochs (10; 3D 20)\n"
            "      --sched-gamma G            (0.95)\n"
            "      --learning-rate LR         AdamW learning rate (1e-3)\n"
            "      --batch-size B             wedges per step (4)\n"
            "      --batches-per-epoch K      steps per epoch (default: all full batches)\n"
            "      --validation-batches-per-epoch V   test batches per validation (8; 0: none)\n"
            "      --seed S                   initialisation and shuffling seed (1)\n"
            "      --no-shuffle               keep the manifest order\n"
            "Files:\n"
            "  -o, --out MODEL.safetensors    the trained model (required)\n"
            "      --log LOSSES.csv           one row per step: epoch,step,lr,loss,loss_seg,\n"
            "                                 loss_reg,coef (a resume continues it, first\n"
            "                                 dropping rows past the checkpoint's step)\n"
            "      --checkpoint PATH          checkpoint file (default MODEL.safetensors.ckpt)\n"
            "      --checkpoint-every K       also every K steps (default: each epoch end)\n"
            "      --resume CKPT              continue a run exactly where CKPT left it\n"
            "      --max-steps K              stop at global step K (with a checkpoint), to\n"
            "                                 train in slices: resume later\n"
            "  Ctrl-C (SIGINT) or SIGTERM ends the run after the current step, as\n"
            "  --max-steps does (model and checkpoint written; exit status 130 or 143);\n"
            "  a second signal stops at once.\n"
            "Other:\n"
            "  -t, --threads N                threads (BCAE_NUM_THREADS or all cores)\n"
            "      --device D                 auto (default), cpu or cuda: see docs/CUDA.md\n"
            "      --precision P              fp32 (default) or bf16: mixed precision, bf16\n"
            "                                 convolutions with fp32 master weights, AdamW\n"
            "                                 and losses (bcae-2d; AVX512-BF16 CPUs;\n"
            "                                 docs/PRECISION.md); a resume keeps it\n"
            "  -q, --quiet                    no progress on stderr\n"
            "  -h, --help\n"
            "\n"
            "On several processes (a build with MPI; docs/TRAINING.md):\n"
            "  mpirun -np N bcae train ... --batch-size B   data-parallel: each rank runs B/N\n"
            "  wedges of every batch of B (B must divide by N), gradients are summed over the\n"
            "  ranks, and the run follows the same trajectory as one process with batch B;\n"
            "  rank 0 alone prints, logs and writes the model and checkpoints. --resume\n"
            "  works on any rank count. --threads is per rank; bind ranks to cores\n"
            "  (mpirun --map-by slot:PE=T --bind-to core, T = --threads) or not at all\n"
            "  (--bind-to none): Open MPI's default binds each rank to one core.\n");
}

/* Set by the first SIGINT or SIGTERM (the signal's number): the library
 * reads it after every step and ends the run there with a checkpoint. A
 * second signal, of either kind, has its default action. The one global of
 * the tool: a signal handler can reach nothing else. */
static volatile sig_atomic_t interrupted;
_Static_assert(sizeof(sig_atomic_t) == sizeof(int), "bcae_train_config.stop is an int flag");

static void on_signal(int sig)
{
    if (interrupted) { /* the second: as if never caught (signal and raise are async-safe) */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = sig;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* reads of the data go on; the step ends as usual */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct view {
    cli_progress train;
    char label[64];
    int quiet, epochs, current; /* current: epoch the bar shows, -1 none */
    int warned_empty;
    int silent; /* not rank 0: rank 0 speaks for all */
    double step_s, comm_s; /* this epoch's, for the share in collectives */
    long steps;
    long last_step;
    int last_epoch, last_epoch_done; /* of the last training step */
    int bar_open; /* a bar is on the line (an epoch begun, not finished) */
} view;

static void on_progress(void *ctx, const bcae_train_progress *p)
{
    view *v = ctx;
    char extra[200];
    if (!p->validation) { /* every rank: to tell a finished run from a stopped one */
        v->last_step = p->step;
        v->last_epoch = p->epoch;
        v->last_epoch_done = p->epoch_done;
    }
    if (v->silent) return;
    if (!p->validation) {
        if (p->epoch != v->current) {
            /* A resumed run starts mid-epoch: the bar counts from there. */
            snprintf(v->label, sizeof v->label, "epoch %d/%d", p->epoch + 1, v->epochs);
            cli_progress_start(&v->train, v->label, "steps", (uint64_t)p->batches, v->quiet);
            /* The bar opens after this epoch's first step here: count that
             * step's time in, and not the steps an earlier run did. */
            v->train.base = (uint64_t)p->batch - 1;
            v->train.start -= p->step_seconds;
            v->current = p->epoch;
            v->bar_open = 1;
            v->step_s = v->comm_s = 0;
            v->steps = 0;
        }
        v->steps++;
        v->step_s += p->step_seconds;
        v->comm_s += p->comm_seconds;
        snprintf(extra, sizeof extra, "loss %.4g seg %.4g reg %.4g coef %.3g prec %.3f rec %.3f",
                 p->loss, p->loss_seg, p->loss_reg, p->coef, p->precision, p->recall);
        /* Recall is undefined only when no batch of the epoch so far held a
         * single hit: the model then learns to output zeros, and the
         * losses say nothing. Said once, even with --quiet. */
        if (p->recall != p->recall && !v->warned_empty && (p->epoch_done || p->batch >= 8)) {
            fprintf(stderr, "bcae train: warning: the first %ld training batches of epoch %d "
                            "hold no non-zero voxel: check the data (--data)\n",
                    p->batch, p->epoch + 1);
            v->warned_empty = 1;
        }
        if (p->epoch_done) {
            cli_progress_finish(&v->train, (uint64_t)p->batch);
            v->bar_open = 0;
            if (!v->quiet && cli_size() > 1)
                fprintf(stderr, "  train: step %ld lr %.3g %s; %.3f s a step, %.1f%% in "
                                "collectives\n",
                        p->step, p->lr, extra, v->step_s / (double)v->steps,
                        v->step_s > 0 ? 100 * v->comm_s / v->step_s : 0.0);
            else if (!v->quiet)
                fprintf(stderr, "  train: step %ld lr %.3g %s\n", p->step, p->lr, extra);
        } else {
            cli_progress_update(&v->train, (uint64_t)p->batch, extra);
        }
    } else if (p->epoch_done) {
        /* Validation results go to stdout: they are the run's results. */
        printf("epoch %d step %ld validation: loss %.6g loss_seg %.6g loss_reg(mae) %.6g "
               "precision %.4f recall %.4f\n",
               p->epoch + 1, p->step, p->loss, p->loss_seg, p->loss_reg, p->precision, p->recall);
        fflush(stdout);
    }
}

int verb_train(int argc, char **argv)
{
    const char *verb = "train";
    bcae_train_config cfg;
    bcae_train_config_default(&cfg);
    long threads_opt = 0, lv;
    double dv;
    int quiet = 0, set_epochs = 0, set_warmup = 0, set_steps = 0, m_given = 0;
    const char *features = NULL;
    enum {
        O_DATA = 256, O_ARCH, O_M, O_N, O_D, O_THR, O_INIT, O_BIAS, O_EPOCHS, O_WARMUP, O_STEPS,
        O_GAMMA, O_LR, O_BATCH, O_BPE, O_VBPE, O_SEED, O_NOSHUF, O_LOG, O_CKPT, O_CKPT_EVERY,
        O_RESUME, O_MAX_STEPS, O_DEVICE, O_FEATURES, O_PRECISION
    };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},
        {"arch", required_argument, 0, O_ARCH},
        {"features", required_argument, 0, O_FEATURES},
        {"m", required_argument, 0, O_M},
        {"n", required_argument, 0, O_N},
        {"d", required_argument, 0, O_D},
        {"clf-threshold", required_argument, 0, O_THR},
        {"init", required_argument, 0, O_INIT},
        {"clf-bias-init", required_argument, 0, O_BIAS},
        {"num-epochs", required_argument, 0, O_EPOCHS},
        {"num-warmup-epochs", required_argument, 0, O_WARMUP},
        {"sched-steps", required_argument, 0, O_STEPS},
        {"sched-gamma", required_argument, 0, O_GAMMA},
        {"learning-rate", required_argument, 0, O_LR},
        {"batch-size", required_argument, 0, O_BATCH},
        {"batches-per-epoch", required_argument, 0, O_BPE},
        {"validation-batches-per-epoch", required_argument, 0, O_VBPE},
        {"seed", required_argument, 0, O_SEED},
        {"no-shuffle", no_argument, 0, O_NOSHUF},
        {"out", required_argument, 0, 'o'},
        {"log", required_argument, 0, O_LOG},
        {"checkpoint", required_argument, 0, O_CKPT},
        {"checkpoint-every", required_argument, 0, O_CKPT_EVERY},
        {"resume", required_argument, 0, O_RESUME},
        {"max-steps", required_argument, 0, O_MAX_STEPS},
        {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, O_DEVICE},
        {"precision", required_argument, 0, O_PRECISION},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
#define LONGOPT(name, lo, hi, dst)                                                  \
    do {                                                                            \
        if (cli_parse_long(verb, name, optarg, lo, hi, &lv)) return CLI_EXIT_USAGE; \
        dst = lv;                                                                   \
    } while (0)
#define DBLOPT(name, lo, hi, dst)                                                     \
    do {                                                                              \
        if (cli_parse_double(verb, name, optarg, lo, hi, &dv)) return CLI_EXIT_USAGE; \
        dst = (float)dv;                                                              \
    } while (0)
    while ((c = getopt_long(argc, argv, ":o:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: cfg.data_dir = optarg; break;
        case O_ARCH:
            if (strcmp(optarg, "bcae-2d") && strcmp(optarg, "bcae++") &&
                strcmp(optarg, "bcae-ht") && strcmp(optarg, "bcae"))
                return cli_usage_error(verb, "--arch %s: expected bcae-2d, bcae++, bcae-ht or "
                                             "bcae", optarg);
            cfg.arch = optarg;
            break;
        case O_FEATURES: features = optarg; break;
        case O_M: LONGOPT("--m", 1, 32, cfg.m); m_given = 1; break;
        case O_N: LONGOPT("--n", 1, 32, cfg.n); m_given = 1; break;
        case O_D: LONGOPT("--d", 1, 6, cfg.d); m_given = 1; break;
        case O_THR: DBLOPT("--clf-threshold", 1e-6, 1 - 1e-6, cfg.clf_threshold); break;
        case O_INIT: cfg.init = optarg; break;
        case O_BIAS: DBLOPT("--clf-bias-init", 1e-6, 1 - 1e-6, cfg.clf_bias_init); break;
        case O_EPOCHS: LONGOPT("--num-epochs", 1, 1000000, cfg.num_epochs); set_epochs = 1; break;
        case O_WARMUP:
            LONGOPT("--num-warmup-epochs", 0, 1000000, cfg.num_warmup_epochs);
            set_warmup = 1;
            break;
        case O_STEPS: LONGOPT("--sched-steps", 1, 1000000, cfg.sched_steps); set_steps = 1; break;
        case O_GAMMA: DBLOPT("--sched-gamma", 1e-6, 1, cfg.sched_gamma); break;
        case O_LR: DBLOPT("--learning-rate", 1e-12, 10, cfg.learning_rate); break;
        case O_BATCH: LONGOPT("--batch-size", 1, 64, cfg.batch_size); break;
        case O_BPE: LONGOPT("--batches-per-epoch", 1, 1000000000, cfg.batches_per_epoch); break;
        case O_VBPE:
            LONGOPT("--validation-batches-per-epoch", 0, 1000000000,
                    cfg.validation_batches_per_epoch);
            break;
        case O_SEED:
            if (cli_parse_u64(verb, "--seed", optarg, &cfg.seed)) return CLI_EXIT_USAGE;
            break;
        case O_NOSHUF: cfg.shuffle = 0; break;
        case 'o': cfg.out = optarg; break;
        case O_LOG: cfg.log_path = optarg; break;
        case O_CKPT: cfg.checkpoint_path = optarg; break;
        case O_CKPT_EVERY: LONGOPT("--checkpoint-every", 1, 1000000000, cfg.checkpoint_every); break;
        case O_RESUME: cfg.resume = optarg; break;
        case O_MAX_STEPS: LONGOPT("--max-steps", 1, 1000000000000L, cfg.max_steps); break;
        case O_DEVICE:
            if (cli_parse_device(verb, optarg, &cfg.device)) return CLI_EXIT_USAGE;
            break;
        case O_PRECISION: {
            bcae_error perr;
            if (bcae_precision_parse(optarg, &cfg.precision, &perr))
                return cli_usage_error(verb, "--precision: %s", perr.message);
            if (cfg.precision == BCAE_PRECISION_INT8)
                return cli_usage_error(verb, "--precision: training runs fp32 or bf16");
            break;
        }
        case 't': LONGOPT("--threads", 1, 4096, threads_opt); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
#undef LONGOPT
#undef DBLOPT
    if (optind < argc) return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    if (!cfg.data_dir) return cli_usage_error(verb, "--data DIR is required");
    if (!cfg.out) return cli_usage_error(verb, "--out MODEL.safetensors is required");
    if (cfg.init && cfg.resume)
        return cli_usage_error(verb, "--init and --resume exclude each other");
    int is2d = !strcmp(cfg.arch, "bcae-2d");
    if (!is2d) {
        if (m_given) return cli_usage_error(verb, "--m, --n, --d are for bcae-2d only");
        if (features) {
            int *f = cfg.features;
            char tail;
            if (sscanf(features, "%d,%d,%d,%d%c", &f[0], &f[1], &f[2], &f[3], &tail) != 4)
                return cli_usage_error(verb, "--features expects four comma-separated widths, "
                                             "got '%s'", features);
        }
        /* SPEC section 4: BCAE++/HT train 1000 epochs, warmup 100, step 20. */
        if (!set_epochs) cfg.num_epochs = 1000;
        if (!set_warmup) cfg.num_warmup_epochs = 100;
        if (!set_steps) cfg.sched_steps = 20;
    } else if (features) {
        return cli_usage_error(verb, "--features is for the 3D models (--arch bcae++, bcae-ht, "
                                     "bcae)");
    }
    cfg.threads = cli_threads(verb, threads_opt);
    if (cfg.threads < 0) return CLI_EXIT_USAGE;
    if (cli_device_resolve(verb, cfg.device, &cfg.device)) return CLI_EXIT_FAIL;
    cfg.comm = cli_comm();
    const int ranks = cli_size();
    if (cfg.batch_size % ranks)
        return cli_usage_error(verb, "--batch-size %d does not split evenly over %d ranks: it is "
                                     "the global batch, each rank runs batch-size / ranks wedges",
                               cfg.batch_size, ranks);

    view v = {0};
    v.current = -1;
    v.quiet = quiet;
    v.epochs = cfg.num_epochs;
    v.silent = cli_rank() != 0;
    bcae_error err;
    cfg.stop = &interrupted;
    catch_signals();
    bcae_status st = bcae_train(&cfg, on_progress, &v, &err);
    if (v.bar_open && v.train.tty && !quiet && !v.silent) fputc('\n', stderr); /* leave the bar's line */
    if (st) return cli_fail(verb, &err);
    /* A run stopped by a signal (here, or under mpirun on another rank) ends
     * at a step boundary as --max-steps does; one that was signalled after
     * its last step has simply finished. */
    const int finished = v.last_step == 0 || /* a resume with nothing left to run */
                         (cfg.max_steps > 0 && v.last_step >= cfg.max_steps) ||
                         (v.last_epoch == cfg.num_epochs - 1 && v.last_epoch_done);
    if (!finished) {
        if (!v.silent) {
            char ckpt[4096];
            if (cfg.checkpoint_path) snprintf(ckpt, sizeof ckpt, "%s", cfg.checkpoint_path);
            else snprintf(ckpt, sizeof ckpt, "%s.ckpt", cfg.out);
            fprintf(stderr, "bcae train: %s after step %ld: wrote %s and the checkpoint %s; "
                            "continue with --resume %s\n",
                    interrupted == SIGTERM  ? "interrupted (SIGTERM)"
                    : interrupted == SIGINT ? "interrupted (SIGINT)"
                                            : "stopped by another rank's signal",
                    v.last_step, cfg.out, ckpt, ckpt);
        }
        return interrupted ? 128 + (int)interrupted : CLI_EXIT_FAIL;
    }
    if (!quiet && !v.silent) fprintf(stderr, "train: wrote %s\n", cfg.out);
    return CLI_EXIT_OK;
}
