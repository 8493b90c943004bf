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
void emu_cli_help(FILE *f, int argc, char **argv);

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
        emu_cli_help(stderr, 0, NULL);
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
