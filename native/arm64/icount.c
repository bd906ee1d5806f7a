/*
 * icount: a qemu-user plugin that counts the guest instructions a program
 * executes and logs the running count at the program's marker syscalls and at
 * the timer reads (clock_gettime) between them.
 *
 *   qemu-aarch64 -plugin icount.so,out=LOG,marker=N,timer=M PROGRAM...
 *
 * mfbench --instruction-markers issues syscall N (an unused number: the
 * kernel and qemu answer ENOSYS) with (kind, argument) around each inference
 * and each delegate call; XNNPACK reads the clock after every operator when it
 * profiles. The log then holds, per line, "<kind> <argument> <count>" (kind 0
 * is a timer read, with its clock id), and a last line "end 0 <total>".
 * quant.arm64 turns it into instructions per inference and per operator.
 *
 * The count advances by a translation block's length when the block starts
 * (an inline add, no callback), so a count read at a syscall includes the
 * `svc` that ends the block. One counter for all vCPUs: exact with a single
 * guest thread, which is how quant.arm64 runs mfbench.
 *
 * The plugin API (version 1, qemu 7.2) is declared here from its
 * documentation, not included: Debian ships no qemu-plugin.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*syscall_cb)(qemu_plugin_id_t id, unsigned int vcpu, int64_t num,
                           uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                           uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, syscall_cb cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t insns;
static FILE *out;
static long marker_nr = -1, timer_nr = -1;
static int armed; /* timer reads are logged once the first marker was seen */

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8) {
    (void)id, (void)vcpu, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num == marker_nr) {
        armed = 1;
        fprintf(out, "%llu %llu %llu\n", (unsigned long long)a1, (unsigned long long)a2,
                (unsigned long long)insns);
    } else if (num == timer_nr && armed) {
        fprintf(out, "0 %llu %llu\n", (unsigned long long)a1, (unsigned long long)insns);
    }
}

static void on_atexit(qemu_plugin_id_t id, void *userdata) {
    (void)id, (void)userdata;
    fprintf(out, "end 0 %llu\n", (unsigned long long)insns);
    fclose(out);
}

static long number_arg(const char *text) {
    char *end = NULL;
    long value = strtol(text, &end, 0);
    return (*text != '\0' && *end == '\0') ? value : -1;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv) {
    (void)info;
    const char *path = NULL;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "out=", 4) == 0) path = argv[i] + 4;
        else if (strncmp(argv[i], "marker=", 7) == 0) marker_nr = number_arg(argv[i] + 7);
        else if (strncmp(argv[i], "timer=", 6) == 0) timer_nr = number_arg(argv[i] + 6);
        else {
            fprintf(stderr, "icount: unknown argument %s (want out=, marker=, timer=)\n", argv[i]);
            return -1;
        }
    }
    if (path == NULL || marker_nr < 0 || timer_nr < 0) {
        fprintf(stderr, "icount: needs out=PATH, marker=N and timer=N\n");
        return -1;
    }
    out = fopen(path, "w");
    if (out == NULL) {
        perror(path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
