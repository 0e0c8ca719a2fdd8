/* The device choice: bcae_device names and parsing, nn_engine_create_for,
 * and a codec asked for CUDA where the CUDA backend cannot run (every build
 * so far: its operations wait on issue 9). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcae.h"
#include "check.h"
#include "model/bcae2d.h"
#include "nn/engine.h"

int main(void)
{
    bcae_error err;
    bcae_device d = BCAE_DEVICE_CPU;
    CHECK(bcae_device_parse("auto", &d, &err) == BCAE_OK && d == BCAE_DEVICE_AUTO);
    CHECK(bcae_device_parse("cpu", &d, &err) == BCAE_OK && d == BCAE_DEVICE_CPU);
    CHECK(bcae_device_parse("cuda", &d, &err) == BCAE_OK && d == BCAE_DEVICE_CUDA);
    d = BCAE_DEVICE_CPU;
    CHECK(bcae_device_parse("bogus", &d, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(err.status == BCAE_ERR_INVALID_ARGUMENT && strstr(err.message, "bogus"));
    CHECK(d == BCAE_DEVICE_CPU); /* untouched on failure */
    CHECK(bcae_device_parse("CPU", &d, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_device_parse("", &d, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_device_parse(NULL, &d, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_device_parse(NULL, &d, NULL) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(bcae_device_name(BCAE_DEVICE_AUTO), "auto") == 0);
    CHECK(strcmp(bcae_device_name(BCAE_DEVICE_CPU), "cpu") == 0);
    CHECK(strcmp(bcae_device_name(BCAE_DEVICE_CUDA), "cuda") == 0);
    CHECK(bcae_device_name((bcae_device)7) == NULL);
    CHECK((bcae_device)0 == BCAE_DEVICE_AUTO); /* zero-initialised options mean AUTO */

    /* The CUDA backend never hands out an engine (without a device it says
     * so; with one, its operations are not implemented). */
    nn_engine *e = (nn_engine *)&err;
    CHECK(nn_cuda_engine_create(0, &e, &err) == BCAE_ERR_UNSUPPORTED && e == NULL);
    CHECK_MSG(strstr(err.message, "CUDA") != NULL, "%s", err.message);
    e = (nn_engine *)&err;
    CHECK(nn_engine_create_for(BCAE_DEVICE_CUDA, 1, &e, NULL, &err) == BCAE_ERR_UNSUPPORTED);
    CHECK(e == NULL);
    if (!nn_cuda_compiled())
        CHECK_MSG(strstr(err.message, "built without CUDA"), "%s", err.message);

    int fell_back = -1;
    CHECK(nn_engine_create_for(BCAE_DEVICE_CPU, 1, &e, &fell_back, &err) == BCAE_OK);
    CHECK(e && e->ops && e->ops->conv_forward && fell_back == 0);
    nn_engine_destroy(e);
    fell_back = -1;
    CHECK(nn_engine_create_for(BCAE_DEVICE_AUTO, 1, &e, &fell_back, &err) == BCAE_OK);
    CHECK(e && e->ops && e->ops->conv_forward && fell_back == 1);
    CHECK(e && strstr(e->ops->name, "cpu"));
    nn_engine_destroy(e);
    CHECK(nn_engine_create_for((bcae_device)7, 1, &e, NULL, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(e == NULL);

    /* A codec: AUTO (zero) runs on the CPU, CUDA fails cleanly, an unknown
     * device is an invalid argument. */
    bcae_model *m = NULL;
    model_config cfg = {3, 3, 3, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &cfg, &m, &err) == BCAE_OK);
    if (!m) return check_report("test_device");
    model_init(m, 3);
    char path[] = "test_device_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(model_save(m, path, &err) == BCAE_OK);
    bcae_model_free(m);
    bcae_model *model = NULL;
    CHECK(bcae_model_load(path, &model, &err) == BCAE_OK);
    unlink(path);
    if (!model) return check_report("test_device");
    bcae_codec *c = NULL;
    bcae_codec_options o = {.batch = 1, .threads = 1};
    CHECK(bcae_codec_create(model, &o, &c, &err) == BCAE_OK && c);
    bcae_codec_free(c);
    c = NULL;
    o.device = BCAE_DEVICE_CPU;
    CHECK(bcae_codec_create(model, &o, &c, &err) == BCAE_OK && c);
    bcae_codec_free(c);
    c = NULL;
    o.device = BCAE_DEVICE_CUDA;
    CHECK(bcae_codec_create(model, &o, &c, &err) == BCAE_ERR_UNSUPPORTED && !c);
    CHECK_MSG(strstr(err.message, "CUDA") != NULL, "%s", err.message);
    o.device = (bcae_device)9;
    CHECK(bcae_codec_create(model, &o, &c, &err) == BCAE_ERR_INVALID_ARGUMENT && !c);
    bcae_model_free(model);
    return check_report("test_device");
}
