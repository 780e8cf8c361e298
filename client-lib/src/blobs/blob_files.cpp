#include "blob_files.hpp"

#include "sha256.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace fieldsync::client::detail {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw failure(errc::storage, "blob folder: " + what + " '" + path + "': " + std::strerror(errno));
}

class fd_guard {
public:
    explicit fd_guard(int fd) : fd_(fd) {}
    ~fd_guard() {
        if (fd_ >= 0) ::close(fd_);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

void write_all(int fd, std::string_view bytes, const std::string& path) {
    while (!bytes.empty()) {
        const auto n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot write", path);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// A rename or a new file is durable only once its folder's entry is.
void sync_dir(const std::string& dir) {
    fd_guard d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() >= 0) (void)::fsync(d.get());  // some file systems refuse fsync on folders
}

std::string read_at(const std::string& path, std::int64_t offset, std::size_t length) {
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail("cannot open", path);
    std::string out(length, '\0');
    std::size_t got = 0;
    while (got < length) {
        const auto n = ::pread(fd.get(), out.data() + got, length - got, static_cast<off_t>(offset) + static_cast<off_t>(got));
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot read", path);
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

std::optional<std::int64_t> size_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::int64_t>(st.st_size);
}

}  // namespace

void blob_folder::ensure_dir() {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) fail("cannot make", dir_);
}

std::optional<std::int64_t> blob_folder::size(std::string_view sha256) const { return size_of(path(sha256)); }

void blob_folder::put(std::string_view sha256, std::string_view bytes) {
    ensure_dir();
    const auto final_path = path(sha256);
    const auto temp = final_path + ".tmp-" + std::to_string(std::random_device{}());
    {
        fd_guard fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (fd.get() < 0) fail("cannot create", temp);
        try {
            write_all(fd.get(), bytes, temp);
            if (::fsync(fd.get()) != 0) fail("cannot sync", temp);
        } catch (...) {
            ::unlink(temp.c_str());
            throw;
        }
    }
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
        ::unlink(temp.c_str());
        fail("cannot rename into", final_path);
    }
    sync_dir(dir_);
}

std::string blob_folder::read(std::string_view sha256, std::int64_t offset, std::size_t length) const {
    return read_at(path(sha256), offset, length);
}

std::string blob_folder::read_all(std::string_view sha256) const {
    const auto n = size(sha256);
    if (!n) {
        errno = ENOENT;
        fail("cannot open", path(sha256));
    }
    return read_at(path(sha256), 0, static_cast<std::size_t>(*n));
}

void blob_folder::remove(std::string_view sha256) { ::unlink(path(sha256).c_str()); }

std::int64_t blob_folder::part_size(std::string_view sha256) const { return size_of(part_path(sha256)).value_or(0); }

void blob_folder::append_part(std::string_view sha256, std::string_view bytes) {
    ensure_dir();
    const auto p = part_path(sha256);
    fd_guard fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (fd.get() < 0) fail("cannot open", p);
    write_all(fd.get(), bytes, p);
    // A resumed download asks for the bytes after what the file holds: what it holds must be
    // on disk, or a crash would leave a hole the Range request skips.
    if (::fsync(fd.get()) != 0) fail("cannot sync", p);
}

void blob_folder::drop_part(std::string_view sha256) { ::unlink(part_path(sha256).c_str()); }

std::string blob_folder::hash_part(std::string_view sha256) const {
    const auto p = part_path(sha256);
    fd_guard fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail("cannot open", p);
    detail::sha256 h;
    char buf[64 * 1024];
    for (;;) {
        const auto n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot read", p);
        }
        if (n == 0) break;
        h.update(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    return h.hex();
}

void blob_folder::promote_part(std::string_view sha256) {
    const auto from = part_path(sha256);
    const auto to = path(sha256);
    if (::rename(from.c_str(), to.c_str()) != 0) fail("cannot rename into", to);
    sync_dir(dir_);
}

std::string read_file_up_to(const std::string& path, std::int64_t limit) {
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) throw failure(errc::not_found, "no file '" + path + "'");
        fail("cannot open", path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail("cannot read", path);
    if (!S_ISREG(st.st_mode)) throw failure(errc::invalid_argument, "'" + path + "' is not a regular file");
    if (st.st_size > limit)
        throw failure(errc::invalid_argument, "'" + path + "' is " + std::to_string(st.st_size) +
                                                  " bytes; an attachment may be at most " + std::to_string(limit));
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < out.size()) {
        const auto n = ::read(fd.get(), out.data() + got, out.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot read", path);
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

}  // namespace fieldsync::client::detail
