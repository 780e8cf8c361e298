// Blobs in a folder (blob_store.hpp; ARCHITECTURE.md, "Attachments"). A kept blob is one
// file named by its SHA-256 under a folder of its first two hex digits; an upload in progress
// is one file per device and hash, appended chunk by chunk, each chunk fsynced before the
// device hears its new offset, and renamed into place once its hash is checked. A rename is
// atomic, so a blob is either whole under its name or not there, whatever moment the process
// dies at; what an upload held when it died is its file's length, all of it written bytes of
// that upload (a SIGKILL loses no write the kernel accepted; a power cut may lose the last
// unacknowledged ones, and the final hash check catches any damage).

#include <fieldsync/server/blob_store.hpp>

#include "store/store_util.hpp"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace fieldsync::server {

namespace fs = std::filesystem;
using protocol::errc;
using protocol::error;

namespace {

error io_error(const std::string& what, const fs::path& p, int err = errno) {
    return error{errc::storage_error, what + " " + p.string() + ": " + std::strerror(err)};
}

// Makes a directory entry (a created or renamed file) durable.
bool sync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

std::int64_t mtime_ms(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

class blob_dir final : public blob_store {
public:
    explicit blob_dir(fs::path root) : root_(std::move(root)) {}

    protocol::expected<std::optional<std::int64_t>> size(const std::string& sha) override {
        struct stat st {};
        if (::stat(blob_path(sha).c_str(), &st) != 0) {
            if (errno == ENOENT) return std::optional<std::int64_t>{};
            return io_error("cannot read", blob_path(sha));
        }
        return std::optional<std::int64_t>{static_cast<std::int64_t>(st.st_size)};
    }

    protocol::expected<std::string> read(const std::string& sha, std::int64_t offset, std::int64_t length) override {
        fd_guard f{::open(blob_path(sha).c_str(), O_RDONLY | O_CLOEXEC)};
        if (f.fd < 0) {
            if (errno == ENOENT) return error{errc::not_found, "no blob " + sha};
            return io_error("cannot open", blob_path(sha));
        }
        std::string out(static_cast<std::size_t>(std::max<std::int64_t>(length, 0)), '\0');
        std::size_t got = 0;
        while (got < out.size()) {
            const auto n = ::pread(f.fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return io_error("cannot read", blob_path(sha));
            if (n == 0) break;
            got += static_cast<std::size_t>(n);
        }
        out.resize(got);
        return out;
    }

    protocol::expected<std::optional<upload_state>> upload(const std::string& device_id,
                                                           const std::string& sha) override {
        std::lock_guard lock(stripe(device_id, sha));
        return find_upload(device_id, sha);
    }

    protocol::expected<std::int64_t> append(const std::string& device_id, const std::string& sha, std::int64_t length,
                                            std::int64_t offset, std::string_view bytes) override {
        std::lock_guard lock(stripe(device_id, sha));
        auto held = find_upload(device_id, sha);
        if (!held) return std::move(held).err();
        const std::int64_t at = *held ? (*held)->offset : 0;
        if (offset != at)
            return error{errc::upload_offset, "the server holds " + std::to_string(at) + " bytes of this upload"};
        if (*held && (*held)->length != length)
            return error{errc::bad_request, "Upload-Length changed during the upload (it began as " +
                                                std::to_string((*held)->length) + ")"};
        const auto dir = device_dir(device_id);
        const auto file = dir / (sha + "." + std::to_string(length));
        const bool fresh = !*held;
        if (fresh) {
            std::error_code ec;
            fs::create_directories(dir, ec);
            if (ec) return error{errc::storage_error, "cannot make " + dir.string() + ": " + ec.message()};
            // Who the folder belongs to, for gc's report and the quota of a listing.
            if (!fs::exists(dir / "device")) {
                fd_guard d{::open((dir / "device").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
                if (d.fd < 0 || ::write(d.fd, device_id.data(), device_id.size()) != static_cast<ssize_t>(device_id.size()) ||
                    ::fsync(d.fd) != 0)
                    return io_error("cannot write", dir / "device");
            }
        }
        fd_guard f{::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)};
        if (f.fd < 0) return io_error("cannot open", file);
        std::size_t put = 0;
        while (put < bytes.size()) {
            const auto n = ::pwrite(f.fd, bytes.data() + put, bytes.size() - put, static_cast<off_t>(offset + put));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int e = errno;
                // Whatever part was written stays: the next offset query reports it.
                return io_error("cannot write", file, e);
            }
            put += static_cast<std::size_t>(n);
        }
        if (::fdatasync(f.fd) != 0) return io_error("cannot sync", file);
        if (fresh && (!sync_dir(dir) || !sync_dir(dir.parent_path()))) return io_error("cannot sync", dir);
        return offset + static_cast<std::int64_t>(bytes.size());
    }

    protocol::expected<void> complete(const std::string& device_id, const std::string& sha) override {
        std::lock_guard lock(stripe(device_id, sha));
        auto held = find_upload(device_id, sha);
        if (!held) return std::move(held).err();
        if (!*held || (*held)->offset != (*held)->length)
            return error{errc::bad_request, "the upload is not finished"};
        const auto file = upload_path(device_id, sha, (*held)->length);
        auto digest = hash_file(file);
        if (!digest) return std::move(digest).err();
        if (*digest != sha) {
            ::unlink(file.c_str());
            return error{errc::blob_hash_mismatch,
                         "the bytes received hash to " + *digest + ", not to the name they were sent under"};
        }
        const auto target = blob_path(sha);
        std::error_code ec;
        fs::create_directories(target.parent_path(), ec);
        if (ec) return error{errc::storage_error, "cannot make " + target.parent_path().string() + ": " + ec.message()};
        // The upload file was fsynced chunk by chunk; the rename makes it the blob at once.
        if (::rename(file.c_str(), target.c_str()) != 0) return io_error("cannot keep", target);
        if (!sync_dir(target.parent_path()) || !sync_dir(file.parent_path())) return io_error("cannot sync", target);
        return {};
    }

    protocol::expected<void> forget_upload(const std::string& device_id, const std::string& sha) override {
        std::lock_guard lock(stripe(device_id, sha));
        auto held = find_upload(device_id, sha);
        if (!held) return std::move(held).err();
        if (*held) {
            const auto file = upload_path(device_id, sha, (*held)->length);
            if (::unlink(file.c_str()) != 0 && errno != ENOENT) return io_error("cannot remove", file);
        }
        return {};
    }

    protocol::expected<std::vector<upload_state>> uploads() override {
        std::vector<upload_state> out;
        std::error_code ec;
        const auto base = root_ / "uploads";
        if (!fs::exists(base, ec)) return out;
        for (const auto& d : fs::directory_iterator(base, ec)) {
            if (!d.is_directory()) continue;
            std::string device_id;
            {
                fd_guard f{::open((d.path() / "device").c_str(), O_RDONLY | O_CLOEXEC)};
                char buf[512];
                const auto n = f.fd >= 0 ? ::read(f.fd, buf, sizeof buf) : -1;
                if (n > 0) device_id.assign(buf, static_cast<std::size_t>(n));
            }
            for (const auto& e : fs::directory_iterator(d.path(), ec)) {
                auto u = parse_upload(e.path());
                if (!u) continue;
                u->device_id = device_id;
                out.push_back(std::move(*u));
            }
        }
        if (ec) return error{errc::storage_error, "cannot list " + base.string() + ": " + ec.message()};
        return out;
    }

    protocol::expected<std::vector<blob_file>> blobs() override {
        std::vector<blob_file> out;
        std::error_code ec;
        for (const auto& d : fs::directory_iterator(root_, ec)) {
            const auto name = d.path().filename().string();
            if (name.size() != 2 || !d.is_directory()) continue;
            for (const auto& e : fs::directory_iterator(d.path(), ec)) {
                const auto sha = e.path().filename().string();
                struct stat st {};
                if (sha.size() != 64 || ::stat(e.path().c_str(), &st) != 0) continue;
                out.push_back({sha, static_cast<std::int64_t>(st.st_size), mtime_ms(st)});
            }
        }
        if (ec) return error{errc::storage_error, "cannot list " + root_.string() + ": " + ec.message()};
        return out;
    }

    protocol::expected<void> remove(const std::string& sha) override {
        const auto p = blob_path(sha);
        if (::unlink(p.c_str()) != 0 && errno != ENOENT) return io_error("cannot remove", p);
        sync_dir(p.parent_path());
        return {};
    }

private:
    fs::path blob_path(const std::string& sha) const { return root_ / sha.substr(0, 2) / sha; }

    // Device ids are the store's text; the folder is named by a hash of it, never by it.
    fs::path device_dir(const std::string& device_id) const {
        return root_ / "uploads" / store_util::hex(reinterpret_cast<const unsigned char*>(store_util::sha256(device_id).data()), 16);
    }
    fs::path upload_path(const std::string& device_id, const std::string& sha, std::int64_t length) const {
        return device_dir(device_id) / (sha + "." + std::to_string(length));
    }

    static std::optional<upload_state> parse_upload(const fs::path& p) {
        const auto name = p.filename().string();
        if (name.size() < 66 || name[64] != '.') return std::nullopt;
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0) return std::nullopt;
        upload_state u;
        u.sha256 = name.substr(0, 64);
        try {
            u.length = std::stoll(name.substr(65));
        } catch (...) {
            return std::nullopt;
        }
        u.offset = static_cast<std::int64_t>(st.st_size);
        u.touched_ms = mtime_ms(st);
        return u;
    }

    protocol::expected<std::optional<upload_state>> find_upload(const std::string& device_id, const std::string& sha) {
        std::error_code ec;
        const auto dir = device_dir(device_id);
        if (!fs::exists(dir, ec)) return std::optional<upload_state>{};
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            const auto name = e.path().filename().string();
            if (name.size() > 65 && name.compare(0, 64, sha) == 0 && name[64] == '.') {
                auto u = parse_upload(e.path());
                if (u) u->device_id = device_id;
                return u;
            }
        }
        if (ec) return error{errc::storage_error, "cannot list " + dir.string() + ": " + ec.message()};
        return std::optional<upload_state>{};
    }

    protocol::expected<std::string> hash_file(const fs::path& p) {
        fd_guard f{::open(p.c_str(), O_RDONLY | O_CLOEXEC)};
        if (f.fd < 0) return io_error("cannot open", p);
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
        if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
            return error{errc::internal, "SHA-256 is not available"};
        std::array<char, 1 << 16> buf;
        while (true) {
            const auto n = ::read(f.fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return io_error("cannot read", p);
            if (n == 0) break;
            EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx.get(), md, &len);
        return store_util::hex(md, len);
    }

    std::mutex& stripe(const std::string& device_id, const std::string& sha) {
        return stripes_[std::hash<std::string>{}(device_id + "/" + sha) % stripes_.size()];
    }

    fs::path root_;
    std::array<std::mutex, 64> stripes_;
};

}  // namespace

protocol::expected<std::shared_ptr<blob_store>> open_blob_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return error{errc::storage_error, "cannot make the blob folder " + dir + ": " + ec.message()};
    ::chmod(dir.c_str(), 0700);
    return std::shared_ptr<blob_store>(std::make_shared<blob_dir>(fs::path(dir)));
}

std::string default_blob_dir(const std::string& store_path) { return store_path + ".blobs"; }

}  // namespace fieldsync::server

namespace fieldsync::server {

protocol::expected<blob_copy_report> copy_blobs(const std::string& from, const std::string& to) {
    blob_copy_report report;
    std::error_code ec;
    if (!fs::exists(from, ec)) return report;
    auto src = open_blob_dir(from);
    if (!src) return std::move(src).err();
    auto list = (*src)->blobs();
    if (!list) return std::move(list).err();
    auto dst = open_blob_dir(to);
    if (!dst) return std::move(dst).err();
    for (const auto& b : *list) {
        const fs::path target = fs::path(to) / b.sha256.substr(0, 2) / b.sha256;
        if (fs::exists(target, ec)) continue;
        fs::create_directories(target.parent_path(), ec);
        if (ec) return error{errc::storage_error, "cannot make " + target.parent_path().string() + ": " + ec.message()};
        const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
        const fs::path source = fs::path(from) / b.sha256.substr(0, 2) / b.sha256;
        fd_guard in{::open(source.c_str(), O_RDONLY | O_CLOEXEC)};
        if (in.fd < 0) return io_error("cannot open", source);
        fd_guard out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
        if (out.fd < 0) return io_error("cannot create", tmp);
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
        if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
            return error{errc::internal, "SHA-256 is not available"};
        std::array<char, 1 << 16> buf;
        std::int64_t copied = 0;
        while (true) {
            const auto n = ::read(in.fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return io_error("cannot read", source);
            if (n == 0) break;
            EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
            for (ssize_t put = 0; put < n;) {
                const auto w = ::write(out.fd, buf.data() + put, static_cast<std::size_t>(n - put));
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) return io_error("cannot write", tmp);
                put += w;
            }
            copied += n;
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx.get(), md, &len);
        if (store_util::hex(md, len) != b.sha256) {
            ::unlink(tmp.c_str());
            return error{errc::storage_error, "the blob " + source.string() + " does not match its name: it is damaged"};
        }
        if (::fsync(out.fd) != 0) return io_error("cannot sync", tmp);
        if (::rename(tmp.c_str(), target.c_str()) != 0) return io_error("cannot rename", tmp);
        if (!sync_dir(target.parent_path())) return io_error("cannot sync", target.parent_path());
        ++report.blobs;
        report.bytes += copied;
    }
    return report;
}

}  // namespace fieldsync::server
