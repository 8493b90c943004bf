/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-emulator entry point:
 *   akv-emulator serve --dir DIR [options]        run the emulator
 *   akv-emulator --dir DIR <control command ...>  talk to a running one
 * `--dir DIR` may appear anywhere; it is removed before dispatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int emu_serve_main(int argc, char **argv, const char *dir);
int emu_cli_main(int argc, char **argv, const char *dir);

static void help(void)
{
    fputs("usage:\n"
          "  akv-emulator serve --dir DIR [--host 127.0.0.1] [--port 0]\n"
          "      [--imds-port 0] [--token-lifetime SECONDS] [--throttle]\n"
          "      [--throttle-scale F] [--threads N]\n"
          "  akv-emulator --dir DIR identity create|show|federated-token|"
          "revoke-tokens --name N\n"
          "  akv-emulator --dir DIR ad sp create-for-rbac --name N "
          "[--create-cert]\n"
          "  akv-emulator --dir DIR keyvault create|show|list|set-policy|"
          "delete-policy ...\n"
          "  akv-emulator --dir DIR keyvault key create|show|rotate|"
          "set-attributes|delete|recover|purge|list|list-versions|import ...\n"
          "  akv-emulator --dir DIR fault add|clear|list ...\n"
          "  akv-emulator --dir DIR stats [--reset]\n",
          stderr);
}

int main(int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    const char *dir = NULL;
    int i, n = 0, rc;

    if (!rest) {
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (!dir && strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            rest[n++] = argv[i];
        }
    }
    if (n == 0 || strcmp(rest[0], "--help") == 0 || strcmp(rest[0], "-h") == 0
        || strcmp(rest[0], "help") == 0) {
        help();
        free(rest);
        return n == 0 ? 2 : 0;
    }
    if (strcmp(rest[0], "serve") == 0) {
        rc = emu_serve_main(n - 1, rest + 1, dir);
    } else {
        rc = emu_cli_main(n, rest, dir);
    }
    free(rest);
    return rc;
}
