// gc of attachments (blob_store.hpp, gc_blobs; ARCHITECTURE.md, "Attachments"): blobs no
// version names any more, and uploads abandoned half way, once older than the retention window.

#include <fieldsync/server/blob_store.hpp>
#include <fieldsync/server/store.hpp>

#include <set>

namespace fieldsync::server {

protocol::expected<blob_gc_report> gc_blobs(attachment_store& st, blob_store& blobs, std::int64_t before_ms,
                                            bool dry_run) {
    blob_gc_report report;
    std::set<std::string> seen;
    // Recorded blobs no version names.
    auto unnamed = st.unnamed_blobs(before_ms);
    if (!unnamed) return std::move(unnamed).err();
    for (const auto& b : *unnamed) {
        seen.insert(b.sha256);
        if (!dry_run) {
            // The row goes first, and only while nothing names the blob; the bytes go only if
            // that still holds after, so a version written meanwhile keeps them.
            if (auto r = st.forget_blob(b.sha256); !r) return std::move(r).err();
            auto named = st.blob_named(b.sha256);
            if (!named) return std::move(named).err();
            if (*named) continue;
            if (auto r = blobs.remove(b.sha256); !r) return std::move(r).err();
        }
        ++report.blobs;
        report.bytes += b.size;
    }
    // Bytes kept without a row (the server died between keeping and recording them) that no
    // version names either.
    auto files = blobs.blobs();
    if (!files) return std::move(files).err();
    for (const auto& f : *files) {
        if (seen.count(f.sha256) || f.stored_ms >= before_ms) continue;
        auto meta = st.blob(f.sha256);
        if (!meta) return std::move(meta).err();
        if (*meta) continue;
        auto named = st.blob_named(f.sha256);
        if (!named) return std::move(named).err();
        if (*named) continue;
        if (!dry_run)
            if (auto r = blobs.remove(f.sha256); !r) return std::move(r).err();
        ++report.blobs;
        report.bytes += f.size;
    }
    // Uploads nobody has touched within the window.
    auto open = blobs.uploads();
    if (!open) return std::move(open).err();
    for (const auto& u : *open) {
        if (u.touched_ms >= before_ms) continue;
        if (!dry_run)
            if (auto r = blobs.forget_upload(u.device_id, u.sha256); !r) return std::move(r).err();
        ++report.uploads;
        report.upload_bytes += u.offset;
    }
    return report;
}

}  // namespace fieldsync::server
