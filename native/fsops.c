/*
 * obnam's native file system helper (an N-API addon, built at install time by
 * native/build.mjs): the Linux system calls that Node's fs module lacks, with
 * every name and path taken as raw bytes (a Buffer or Uint8Array), never as a
 * decoded string.
 *
 * Restore uses it to work relative to directory file descriptors that were
 * opened one component at a time with O_NOFOLLOW (makeDir, openDir), and to
 * create and change entries only through the *at calls with a verified parent
 * and a single name (never a path that could pass through a symlink):
 * mkdirat, openat(O_CREAT|O_EXCL|O_NOFOLLOW), mknodat, symlinkat, linkat,
 * unlinkat, fchownat/fchmodat/utimensat with AT_SYMLINK_NOFOLLOW, and xattrs
 * through a file descriptor or /proc/self/fd/N/NAME with lsetxattr. Times are
 * set with a timespec (nanoseconds, negative seconds before 1970). Backup uses
 * readXattrs (llistxattr/lgetxattr on a byte path).
 *
 * Everything here is a blocking call (for worker threads) except makeDirAsync,
 * which runs on libuv's thread pool and returns a Promise (for the main thread).
 * Failures throw an Error shaped like Node's system errors: `code` (errno name,
 * e.g. "ENOTDIR"), `errno` (negative), `syscall`, and a one-line message.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define DIR_PATH_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* ---- errors ---- */

/** An Error like Node's system errors: code (errno name), errno (negative), syscall. */
static napi_value errno_error(napi_env env, int err, const char *syscall) {
  const char *name = strerrorname_np(err);
  char code[32];
  if (name == NULL) {
    snprintf(code, sizeof code, "E%d", err);
    name = code;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s, %s", name, strerror(err), syscall);
  napi_value jcode, jmsg, error, jerrno, jsyscall;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &error);
  napi_create_int32(env, -err, &jerrno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsyscall);
  napi_set_named_property(env, error, "errno", jerrno);
  napi_set_named_property(env, error, "syscall", jsyscall);
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_throw(env, errno_error(env, err, syscall));
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* ---- arguments ---- */

#define MAX_ARGS 6

typedef struct {
  size_t argc;
  napi_value argv[MAX_ARGS];
} args_t;

static int get_args(napi_env env, napi_callback_info info, args_t *a, size_t want) {
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) return 0;
  if (a->argc < want) {
    throw_type(env, "too few arguments");
    return 0;
  }
  return 1;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    throw_type(env, "expected an integer");
    return 0;
  }
  return 1;
}

static int get_uint(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    throw_type(env, "expected an unsigned integer");
    return 0;
  }
  return 1;
}

static int get_int64(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    throw_type(env, "expected an integer");
    return 0;
  }
  return 1;
}

/** The bytes of a Buffer or Uint8Array (not copied). */
static int get_bytes(napi_env env, napi_value v, const char **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    throw_type(env, "expected a Buffer or Uint8Array");
    return 0;
  }
  napi_typedarray_type type;
  void *p;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_uint8_array) {
    throw_type(env, "expected a Buffer or Uint8Array");
    return 0;
  }
  *data = p ? (const char *)p : "";
  return 1;
}

/**
 * Copies bytes into `out` (capacity `cap`) as a NUL-terminated C string.
 * A NUL byte inside, or too long a string, is an error (EINVAL, ENAMETOOLONG).
 */
static int to_cstr(const char *data, size_t len, char *out, size_t cap) {
  if (len >= cap) {
    errno = ENAMETOOLONG;
    return 0;
  }
  if (memchr(data, 0, len) != NULL) {
    errno = EINVAL;
    return 0;
  }
  memcpy(out, data, len);
  out[len] = 0;
  return 1;
}

/** A single file name (one path component): 1..NAME_MAX bytes, no "/", not "." or "..". */
static int to_name(const char *data, size_t len, char *out) {
  if (len == 0 || len > NAME_MAX || memchr(data, '/', len) != NULL || (len == 1 && data[0] == '.') ||
      (len == 2 && data[0] == '.' && data[1] == '.')) {
    errno = len > NAME_MAX ? ENAMETOOLONG : EINVAL;
    return 0;
  }
  return to_cstr(data, len, out, NAME_MAX + 1);
}

/** Reads a name argument; on failure throws (errno as code, `syscall` as the call) and returns 0. */
static int get_name(napi_env env, napi_value v, char *out, const char *syscall) {
  const char *d;
  size_t n;
  if (!get_bytes(env, v, &d, &n)) return 0;
  if (!to_name(d, n, out)) {
    throw_errno(env, errno, syscall);
    return 0;
  }
  return 1;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

/* ---- walking directories without following symlinks ---- */

/**
 * Opens the directory `rel` (components separated by "/", "" for `base`
 * itself) below the directory fd `base`, one component at a time with
 * O_NOFOLLOW|O_DIRECTORY, as an O_PATH fd (usable as the dirfd of *at calls;
 * needs search permission only). A symlink or other non-directory on the way
 * fails with ENOTDIR. Returns the fd, or -1 with errno set.
 */
static int open_dir_path(int base, const char *rel, size_t len) {
  if (len == 0) return openat(base, ".", DIR_PATH_FLAGS);
  int cur = base; /* not ours to close until replaced */
  size_t i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && rel[j] != '/') j++;
    char name[NAME_MAX + 1];
    int ok = to_name(rel + i, j - i, name);
    if (!ok || (j < len && j + 1 == len)) {
      int e = ok ? EINVAL : errno; /* a trailing "/" is refused too */
      if (cur != base) close(cur);
      errno = e;
      return -1;
    }
    int next = openat(cur, name, DIR_PATH_FLAGS);
    int e = errno;
    if (cur != base) close(cur);
    if (next < 0) {
      errno = e == ELOOP ? ENOTDIR : e;
      return -1;
    }
    cur = next;
    i = j + 1;
  }
  return cur;
}

/**
 * Creates the directory `name` in `base`, or, if something is there, checks
 * that it is a real directory (ENOTDIR if not: a symlink, a file), and opens
 * it (O_PATH, never through a symlink). Returns the fd, or -1 with errno.
 */
static int make_dir(int base, const char *name, mode_t mode) {
  if (mkdirat(base, name, mode) != 0 && errno != EEXIST) return -1;
  int fd = openat(base, name, DIR_PATH_FLAGS);
  if (fd < 0 && errno == ELOOP) errno = ENOTDIR;
  return fd;
}

/** openDir(dirFd, rel): an O_PATH fd of the directory rel below dirFd, never through a symlink. */
static napi_value js_open_dir(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t base;
  const char *rel;
  size_t len;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.argv[0], &base) || !get_bytes(env, a.argv[1], &rel, &len)) return NULL;
  int fd = open_dir_path(base, rel, len);
  if (fd < 0) return throw_errno(env, errno, "openat");
  return int_value(env, fd);
}

/** openDirRead(dirFd, name): the directory name in dirFd, opened for reading (for fchmod, futimens...). */
static napi_value js_open_dir_read(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t base;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 2) || !get_int(env, a.argv[0], &base) || !get_name(env, a.argv[1], name, "openat")) return NULL;
  int fd = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno == ELOOP ? ENOTDIR : errno, "openat");
  return int_value(env, fd);
}

/** makeDir(dirFd, name, mode): the fd of directory name in dirFd, created if it was not there. */
static napi_value js_make_dir(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t base;
  uint32_t mode;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 3) || !get_int(env, a.argv[0], &base) || !get_name(env, a.argv[1], name, "mkdirat") ||
      !get_uint(env, a.argv[2], &mode))
    return NULL;
  int fd = make_dir(base, name, (mode_t)mode);
  if (fd < 0) return throw_errno(env, errno, "mkdirat");
  return int_value(env, fd);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int base;
  mode_t mode;
  char name[NAME_MAX + 1];
  int result;
  int err;
} make_dir_job;

static void make_dir_execute(napi_env env, void *data) {
  (void)env;
  make_dir_job *job = data;
  job->result = make_dir(job->base, job->name, job->mode);
  job->err = job->result < 0 ? errno : 0;
}

static void make_dir_complete(napi_env env, napi_status status, void *data) {
  make_dir_job *job = data;
  if (status != napi_ok) {
    if (job->result >= 0) close(job->result);
    job->err = ECANCELED, job->result = -1;
  }
  if (job->result < 0) {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->err, "mkdirat"));
  } else {
    napi_resolve_deferred(env, job->deferred, int_value(env, job->result));
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

/** makeDirAsync(dirFd, name, mode): makeDir on libuv's thread pool; a Promise of the fd. */
static napi_value js_make_dir_async(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t base;
  uint32_t mode;
  make_dir_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "malloc");
  if (!get_args(env, info, &a, 3) || !get_int(env, a.argv[0], &base) || !get_name(env, a.argv[1], job->name, "mkdirat") ||
      !get_uint(env, a.argv[2], &mode)) {
    free(job);
    return NULL;
  }
  job->base = base;
  job->mode = (mode_t)mode;
  napi_value promise, resource;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "obnam.makeDir", NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, make_dir_execute, make_dir_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

/**
 * close(fd): closes an fd this helper opened. (Node's fs.closeSync would
 * warn, in a worker thread, about an fd it did not open itself.)
 */
static napi_value js_close(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t fd;
  if (!get_args(env, info, &a, 1) || !get_int(env, a.argv[0], &fd)) return NULL;
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return undefined(env);
}

/**
 * reserveFd(): an fd (of /dev/null, close-on-exec) that holds the lowest free
 * number until moveFd puts another file there or close frees it.
 */
static napi_value js_reserve_fd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open");
  return int_value(env, fd);
}

/** moveFd(from, onto): the file of fd `from` takes number `onto` (dup3, close-on-exec) and `from` is closed. */
static napi_value js_move_fd(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t from, onto;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.argv[0], &from) || !get_int(env, a.argv[1], &onto)) return NULL;
  if (from == onto) return throw_errno(env, EINVAL, "dup3");
  if (dup3(from, onto, O_CLOEXEC) < 0) return throw_errno(env, errno, "dup3");
  close(from);
  return undefined(env);
}

/* ---- creating entries in a verified directory ---- */

/** createFile(dirFd, name, mode): a new regular file, opened for writing (O_CREAT|O_EXCL|O_NOFOLLOW). */
static napi_value js_create_file(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  uint32_t mode;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 3) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "openat") ||
      !get_uint(env, a.argv[2], &mode))
    return NULL;
  int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) return throw_errno(env, errno, "openat");
  return int_value(env, fd);
}

/** mknodAt(dirFd, name, mode, rdev): a fifo or device node (mode includes S_IFIFO/S_IFCHR/S_IFBLK). */
static napi_value js_mknod_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  uint32_t mode;
  int64_t rdev;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 4) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "mknodat") ||
      !get_uint(env, a.argv[2], &mode) || !get_int64(env, a.argv[3], &rdev))
    return NULL;
  mode_t type = (mode_t)mode & S_IFMT;
  if (type != S_IFIFO && type != S_IFCHR && type != S_IFBLK) return throw_errno(env, EINVAL, "mknodat");
  if (mknodat(dir, name, (mode_t)mode, (dev_t)(uint64_t)rdev) != 0) return throw_errno(env, errno, "mknodat");
  return undefined(env);
}

/** symlinkAt(target, dirFd, name): a symlink with the target's bytes verbatim. */
static napi_value js_symlink_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  const char *t;
  size_t tlen;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 3) || !get_bytes(env, a.argv[0], &t, &tlen) || !get_int(env, a.argv[1], &dir) ||
      !get_name(env, a.argv[2], name, "symlinkat"))
    return NULL;
  char *target = malloc(tlen + 1);
  if (!target) return throw_errno(env, ENOMEM, "malloc");
  if (!to_cstr(t, tlen, target, tlen + 1)) {
    free(target);
    return throw_errno(env, errno, "symlinkat");
  }
  int r = symlinkat(target, dir, name);
  int e = errno;
  free(target);
  if (r != 0) return throw_errno(env, e, "symlinkat");
  return undefined(env);
}

/** linkAt(oldDirFd, oldName, newDirFd, newName): a hard link; a symlink at oldName is linked, not followed. */
static napi_value js_link_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t odir, ndir;
  char oname[NAME_MAX + 1], nname[NAME_MAX + 1];
  if (!get_args(env, info, &a, 4) || !get_int(env, a.argv[0], &odir) || !get_name(env, a.argv[1], oname, "linkat") ||
      !get_int(env, a.argv[2], &ndir) || !get_name(env, a.argv[3], nname, "linkat"))
    return NULL;
  if (linkat(odir, oname, ndir, nname, 0) != 0) return throw_errno(env, errno, "linkat");
  return undefined(env);
}

/** unlinkAt(dirFd, name): removes a non-directory (EISDIR for a directory). */
static napi_value js_unlink_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 2) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "unlinkat")) return NULL;
  if (unlinkat(dir, name, 0) != 0) return throw_errno(env, errno, "unlinkat");
  return undefined(env);
}

/**
 * bindSocketAt(dirFd, name): a Unix socket file at name, as bind() makes it
 * (the socket itself is closed at once). bind takes a path of at most 107
 * bytes, so it binds a short temporary name through /proc/self/fd/DIRFD (the
 * verified directory itself, whatever its path; bind never follows a symlink
 * at the name it creates) and renames that to `name` (rename replaces a
 * non-directory in the way and never follows one).
 */
static napi_value js_bind_socket_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 2) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "bind")) return NULL;
  static unsigned counter;
  char tmp[64];
  struct sockaddr_un addr;
  int err = 0;
  for (int attempt = 0; attempt < 8; attempt++) {
    snprintf(tmp, sizeof tmp, ".obnam-socket-%d-%u-%ld", (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
             (long)(random() & 0xffffff));
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", (int)dir, tmp);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) return throw_errno(env, ENAMETOOLONG, "bind");
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return throw_errno(env, errno, "socket");
    int r = bind(s, (struct sockaddr *)&addr, sizeof addr);
    err = errno;
    close(s);
    if (r == 0) {
      err = 0;
      break;
    }
    if (err != EADDRINUSE) break;
  }
  if (err) return throw_errno(env, err, "bind");
  if (renameat(dir, tmp, dir, name) != 0) {
    int e = errno;
    unlinkat(dir, tmp, 0);
    return throw_errno(env, e, "renameat");
  }
  return undefined(env);
}

/* ---- metadata ---- */

/** fchownAt(dirFd, name, uid, gid): the owner of name itself (AT_SYMLINK_NOFOLLOW). */
static napi_value js_fchown_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  uint32_t uid, gid;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 4) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "fchownat") ||
      !get_uint(env, a.argv[2], &uid) || !get_uint(env, a.argv[3], &gid))
    return NULL;
  if (fchownat(dir, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "fchownat");
  return undefined(env);
}

/** fchmodAt(dirFd, name, mode): the mode of name itself, never of what a symlink points to. */
static napi_value js_fchmod_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  uint32_t mode;
  char name[NAME_MAX + 1];
  if (!get_args(env, info, &a, 3) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "fchmodat") ||
      !get_uint(env, a.argv[2], &mode))
    return NULL;
  if (fchmodat(dir, name, (mode_t)mode, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "fchmodat");
  return undefined(env);
}

static int get_timespec(napi_env env, napi_value sec, napi_value nsec, struct timespec *ts) {
  int64_t s;
  int32_t ns;
  if (!get_int64(env, sec, &s) || !get_int(env, nsec, &ns)) return 0;
  if (ns < 0 || ns > 999999999) {
    throw_type(env, "nanoseconds must be 0..999999999");
    return 0;
  }
  ts[0].tv_sec = ts[1].tv_sec = (time_t)s;
  ts[0].tv_nsec = ts[1].tv_nsec = ns;
  return 1;
}

/**
 * utimensAt(dirFd, name, sec, nsec): atime and mtime of name itself
 * (AT_SYMLINK_NOFOLLOW: a symlink's own times), to the nanosecond. dirFd may
 * be AT_FDCWD and name then a whole path (tests).
 */
static napi_value js_utimens_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  const char *d;
  size_t n;
  struct timespec ts[2];
  if (!get_args(env, info, &a, 4) || !get_int(env, a.argv[0], &dir) || !get_bytes(env, a.argv[1], &d, &n) ||
      !get_timespec(env, a.argv[2], a.argv[3], ts))
    return NULL;
  char path[PATH_MAX + 1];
  if (dir == AT_FDCWD ? !to_cstr(d, n, path, sizeof path) : !to_name(d, n, path)) return throw_errno(env, errno, "utimensat");
  if (utimensat(dir, path, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "utimensat");
  return undefined(env);
}

/** futimens(fd, sec, nsec): atime and mtime of an open file or directory. */
static napi_value js_futimens(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t fd;
  struct timespec ts[2];
  if (!get_args(env, info, &a, 3) || !get_int(env, a.argv[0], &fd) || !get_timespec(env, a.argv[1], a.argv[2], ts)) return NULL;
  if (futimens(fd, ts) != 0) return throw_errno(env, errno, "futimens");
  return undefined(env);
}

static int get_xattr_name(napi_env env, napi_value v, char *out, const char *syscall) {
  const char *d;
  size_t n;
  if (!get_bytes(env, v, &d, &n)) return 0;
  if (n == 0 || !to_cstr(d, n, out, XATTR_NAME_MAX + 1)) {
    throw_errno(env, n == 0 ? EINVAL : errno == ENAMETOOLONG ? ERANGE : errno, syscall);
    return 0;
  }
  return 1;
}

/** fsetxattr(fd, name, value): an extended attribute of an open file or directory. */
static napi_value js_fsetxattr(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t fd;
  char name[XATTR_NAME_MAX + 1];
  const char *value;
  size_t len;
  if (!get_args(env, info, &a, 3) || !get_int(env, a.argv[0], &fd) || !get_xattr_name(env, a.argv[1], name, "fsetxattr") ||
      !get_bytes(env, a.argv[2], &value, &len))
    return NULL;
  if (fsetxattr(fd, name, value, len, 0) != 0) return throw_errno(env, errno, "fsetxattr");
  return undefined(env);
}

/**
 * lsetxattrAt(dirFd, name, xname, value): an extended attribute of name in
 * dirFd itself (a fifo, device or socket, which cannot be opened safely), by
 * /proc/self/fd/DIRFD/NAME: the directory is the verified one whatever its path,
 * and lsetxattr does not follow a symlink at NAME.
 */
static napi_value js_lsetxattr_at(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t dir;
  char name[NAME_MAX + 1];
  char xname[XATTR_NAME_MAX + 1];
  const char *value;
  size_t len;
  if (!get_args(env, info, &a, 4) || !get_int(env, a.argv[0], &dir) || !get_name(env, a.argv[1], name, "lsetxattr") ||
      !get_xattr_name(env, a.argv[2], xname, "lsetxattr") || !get_bytes(env, a.argv[3], &value, &len))
    return NULL;
  char path[NAME_MAX + 64];
  snprintf(path, sizeof path, "/proc/self/fd/%d/%s", (int)dir, name);
  if (lsetxattr(path, xname, value, len, 0) != 0) return throw_errno(env, errno, "lsetxattr");
  return undefined(env);
}

/** lsetxattr(path, xname, value): on a whole byte path (not following a final symlink); for tests and tools. */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  args_t a;
  const char *d, *value;
  size_t n, len;
  char path[PATH_MAX + 1];
  char xname[XATTR_NAME_MAX + 1];
  if (!get_args(env, info, &a, 3) || !get_bytes(env, a.argv[0], &d, &n) || !get_xattr_name(env, a.argv[1], xname, "lsetxattr") ||
      !get_bytes(env, a.argv[2], &value, &len))
    return NULL;
  if (!to_cstr(d, n, path, sizeof path)) return throw_errno(env, errno, "lsetxattr");
  if (lsetxattr(path, xname, value, len, 0) != 0) return throw_errno(env, errno, "lsetxattr");
  return undefined(env);
}

static napi_value buffer_copy(napi_env env, const void *data, size_t len) {
  napi_value b;
  void *out;
  napi_create_buffer_copy(env, len, len ? data : "", &out, &b);
  return b;
}

/**
 * readXattrs(path): the extended attributes of path itself (llistxattr,
 * lgetxattr; a final symlink is not followed), as [name, value] pairs in the
 * order listed, where a value that could not be read is its errno name
 * instead of a Buffer (one removed meanwhile is left out). null if the file
 * system has no xattrs; throws if they cannot be listed.
 */
static napi_value js_read_xattrs(napi_env env, napi_callback_info info) {
  args_t a;
  const char *d;
  size_t n;
  char path[PATH_MAX + 1];
  if (!get_args(env, info, &a, 1) || !get_bytes(env, a.argv[0], &d, &n)) return NULL;
  if (!to_cstr(d, n, path, sizeof path)) return throw_errno(env, errno, "llistxattr");
  char *names = NULL;
  ssize_t size = 0;
  for (int attempt = 0;; attempt++) {
    ssize_t want = llistxattr(path, NULL, 0);
    if (want < 0) {
      int e = errno;
      if (e == ENOTSUP || e == ENOSYS) {
        napi_value nul;
        napi_get_null(env, &nul);
        return nul;
      }
      return throw_errno(env, e, "llistxattr");
    }
    if (want == 0) break;
    char *grown = realloc(names, (size_t)want);
    if (!grown) {
      free(names);
      return throw_errno(env, ENOMEM, "malloc");
    }
    names = grown;
    size = llistxattr(path, names, (size_t)want);
    if (size >= 0) break;
    if (errno != ERANGE || attempt >= 8) {
      int e = errno;
      free(names);
      return throw_errno(env, e, "llistxattr");
    }
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t count = 0;
  char *value = NULL;
  for (ssize_t off = 0; off < size;) {
    const char *xname = names + off;
    size_t nlen = strnlen(xname, (size_t)(size - off));
    off += (ssize_t)nlen + 1;
    if (nlen == 0) continue;
    napi_value result = NULL;
    for (int attempt = 0;; attempt++) {
      ssize_t want = lgetxattr(path, xname, NULL, 0);
      ssize_t got = -1;
      if (want >= 0) {
        char *grown = realloc(value, want ? (size_t)want : 1);
        if (!grown) {
          errno = ENOMEM;
        } else {
          value = grown;
          got = lgetxattr(path, xname, value, (size_t)want);
        }
      }
      if (got >= 0) {
        result = buffer_copy(env, value, (size_t)got);
        break;
      }
      if (errno == ENODATA) break; /* removed since it was listed */
      if (errno == ERANGE && attempt < 8) continue; /* grew since its size was asked */
      const char *code = strerrorname_np(errno);
      napi_create_string_utf8(env, code ? code : "EIO", NAPI_AUTO_LENGTH, &result);
      break;
    }
    if (!result) continue;
    napi_value pair;
    napi_create_array_with_length(env, 2, &pair);
    napi_set_element(env, pair, 0, buffer_copy(env, xname, nlen));
    napi_set_element(env, pair, 1, result);
    napi_set_element(env, out, count++, pair);
  }
  free(value);
  free(names);
  return out;
}

/* ---- module ---- */

#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      FN("openDir", js_open_dir),
      FN("openDirRead", js_open_dir_read),
      FN("makeDir", js_make_dir),
      FN("makeDirAsync", js_make_dir_async),
      FN("close", js_close),
      FN("reserveFd", js_reserve_fd),
      FN("moveFd", js_move_fd),
      FN("createFile", js_create_file),
      FN("mknodAt", js_mknod_at),
      FN("symlinkAt", js_symlink_at),
      FN("linkAt", js_link_at),
      FN("unlinkAt", js_unlink_at),
      FN("bindSocketAt", js_bind_socket_at),
      FN("fchownAt", js_fchown_at),
      FN("fchmodAt", js_fchmod_at),
      FN("utimensAt", js_utimens_at),
      FN("futimens", js_futimens),
      FN("fsetxattr", js_fsetxattr),
      FN("lsetxattrAt", js_lsetxattr_at),
      FN("lsetxattr", js_lsetxattr),
      FN("readXattrs", js_read_xattrs),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value v;
  napi_create_int32(env, AT_FDCWD, &v);
  napi_set_named_property(env, exports, "AT_FDCWD", v);
  napi_create_int32(env, 2, &v);
  napi_set_named_property(env, exports, "VERSION", v);
  return exports;
}
