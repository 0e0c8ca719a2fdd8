/* bcae forward for the 3D models: code, seg, reg, recon as .npy. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec/codec3d.h"
#include "core/half.h"
#include "io/fileutil.h"
#include "verb3d.h"

int cli_model_is_3d(const char *verb, const char *path)
{
    char arch[64];
    bcae_error err;
    if (bcae_model_file_arch(path, arch, sizeof arch, &err)) {
        cli_fail(verb, &err);
        return -1;
    }
    return bcae3d_arch_parse(arch) >= 0;
}

static int save(const char *verb, const char *dir, const char *name, float *data, int ndim,
                const size_t *shape)
{
    bcae_array a = {BCAE_DTYPE_F32, ndim, {0}, data};
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
    char *path = bcae_path_join(dir, name);
    bcae_error err;
    bcae_status s = path ? bcae_npy_write(path, &a, &err) : BCAE_ERR_OUT_OF_MEMORY;
    free(path);
    if (s) {
        if (s == BCAE_ERR_OUT_OF_MEMORY) cli_error(verb, "out of memory");
        else cli_fail(verb, &err);
        return -1;
    }
    return 0;
}

int forward3d_run(const char *verb, const char *model_path, const char *out, int half,
                  int batch, int threads, int nw, char **wedges)
{
    bcae_error err;
    bcae3d_model model;
    nn_engine *e = NULL;
    bcae3d_runner *r = NULL;
    float *host = NULL, *code = NULL, *outs[3] = {NULL, NULL, NULL}, *dev = NULL;
    uint16_t *adc = NULL;
    int rc = CLI_EXIT_FAIL;
    const int b = batch;
    if (bcae3d_load(model_path, &model, &err)) return cli_fail(verb, &err);
    nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = threads};
    if (nn_engine_create(&eo, &e, NULL, &err) ||
        bcae3d_runner_create(e, &model, b, 0, NN_CONV3D_AUTO, &r, &err) ||
        bcae3d_runner_use_fast_encoder(r, &err) || bcae3d_runner_use_fast_decoder(r, &err) ||
        bcae_mkdir_p(out, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const size_t in_per = bcae3d_input_floats(&model), code_per = bcae3d_code_elements(&model);
    const size_t out_per = BCAE3D_OUTPUT_FLOATS;
    nn_tensor full = nn_tensor5_flat(bcae3d_runner_input(r));
    size_t tf = nn_tensor_floats(e, full.n, full.c, full.h, full.w);
    host = malloc((size_t)b * (in_per > code_per ? in_per : code_per) * sizeof(float));
    dev = malloc(3 * tf * sizeof(float));
    adc = malloc(BCAE_WEDGE_VOXELS * sizeof(uint16_t));
    code = malloc((size_t)nw * code_per * sizeof(float));
    for (int k = 0; k < 3; k++) outs[k] = malloc((size_t)nw * out_per * sizeof(float));
    if (!host || !dev || !adc || !code || !outs[0] || !outs[1] || !outs[2]) {
        cli_error(verb, "out of memory for %d wedges", nw);
        goto done;
    }
    nn_tensor tseg = full, treg = full, trec = full;
    tseg.data = dev;
    treg.data = dev + tf;
    trec.data = dev + 2 * tf;
    for (int w0 = 0; w0 < nw; w0 += b) {
        int nb = nw - w0 < b ? nw - w0 : b;
        memset(host, 0, (size_t)b * in_per * sizeof(float));
        for (int i = 0; i < nb; i++) {
            if (bcae_wedge_load(wedges[w0 + i], adc, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
            bcae3d_wedge_to_input(&model, adc, host + (size_t)i * in_per);
        }
        nn_tensor in = nn_tensor5_flat(bcae3d_runner_input(r));
        e->ops->from_nchw(e, host, &in);
        bcae3d_runner_encode(r);
        nn_tensor tc = nn_tensor5_flat(bcae3d_runner_code(r));
        e->ops->to_nchw(e, &tc, host);
        if (half) {
            for (size_t i = 0; i < (size_t)b * code_per; i++)
                host[i] = bcae_f16_to_f32(bcae_f32_to_f16(host[i]));
            e->ops->from_nchw(e, host, &tc);
        }
        memcpy(code + (size_t)w0 * code_per, host, (size_t)nb * code_per * sizeof(float));
        bcae3d_runner_decode(r);
        nn_tensor s = nn_tensor5_flat(bcae3d_runner_seg_logit(r));
        nn_tensor g = nn_tensor5_flat(bcae3d_runner_reg_raw(r));
        e->ops->bcae_heads(e, &s, &g, model.shift, model.scale, model.cfg.clf_threshold, &tseg,
                           &treg, &trec);
        nn_tensor *src[3] = {&tseg, &treg, &trec};
        for (int k = 0; k < 3; k++) {
            e->ops->to_nchw(e, src[k], host);
            for (int i = 0; i < nb; i++)
                bcae3d_crop_output(&model, host + (size_t)i * in_per,
                                   outs[k] + (size_t)(w0 + i) * out_per);
        }
    }
    size_t cs[5] = {(size_t)nw, BCAE3D_CODE_CHANNELS, (size_t)model.code_dims[0],
                    (size_t)model.code_dims[1], (size_t)model.code_dims[2]};
    size_t os[5] = {(size_t)nw, 1, BCAE_WEDGE_LAYERS, BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z};
    if (model.cfg.arch == BCAE3D_ORIGINAL) {
        os[2] = BCAE_WEDGE_AZIMUTH;
        os[3] = BCAE_WEDGE_Z;
        os[4] = BCAE_WEDGE_LAYERS;
    }
    if (save(verb, out, "code.npy", code, 5, cs) || save(verb, out, "seg.npy", outs[0], 5, os) ||
        save(verb, out, "reg.npy", outs[1], 5, os) || save(verb, out, "recon.npy", outs[2], 5, os))
        goto done;
    rc = CLI_EXIT_OK;
done:
    free(host);
    free(dev);
    free(adc);
    free(code);
    for (int k = 0; k < 3; k++) free(outs[k]);
    bcae3d_runner_destroy(r);
    nn_engine_destroy(e);
    bcae3d_destroy(&model);
    return rc;
}
