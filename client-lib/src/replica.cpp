// Local side of a replica: open, edits into the outbox, reads. The sync engine is sync.cpp.

#include "replica_impl.hpp"

#include "blobs/sha256.hpp"

#include <fieldsync/client/tuning.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <fstream>
#include <thread>

namespace fieldsync::client {

using detail::dump_or_null;
using detail::failure;
using detail::guarded;
using detail::outbox_row;
using detail::parse_stored;
using detail::record_row;

std::string_view sync_state_name(sync_state s) noexcept {
    switch (s) {
        case sync_state::synced: return "synced";
        case sync_state::pending: return "pending";
        case sync_state::conflict: return "conflict";
        case sync_state::rejected: return "rejected";
    }
    return "synced";
}

namespace {

template <class T>
T or_default(T value, T fallback) {
    return value > T{} ? value : fallback;
}

record to_record(const record_row& r) {
    record out;
    out.collection = r.collection;
    out.id = r.id;
    out.unit_id = r.unit_id;
    out.deleted = r.local_deleted;
    out.data = r.local_deleted ? json(nullptr) : parse_stored(r.local_data);
    out.version = r.server_version;
    out.state = static_cast<sync_state>(r.state);
    if (r.reason_code)
        out.reason = protocol::error{protocol::errc_from_name(*r.reason_code), r.reason_message.value_or("")};
    out.conflict_id = r.conflict_id;
    out.held = parse_stored(r.held_data);
    if (r.resolution) {
        auto decided = protocol::decode_resolution_notice(json::parse(*r.resolution));
        if (decided) out.resolution = std::move(*decided);
    }
    return out;
}

void check_names(const std::string& collection, const std::string& id) {
    if (collection.empty() || collection.size() > protocol::tuning::max_collection_bytes)
        throw failure(errc::invalid_argument, "collection must be 1 to 64 bytes");
    if (!protocol::is_valid_utf8(collection)) throw failure(errc::invalid_utf8, "collection is not valid UTF-8");
    if (!protocol::valid_id(id))
        throw failure(errc::invalid_argument,
                      "id '" + id + "' must be 1 to 128 printable ASCII characters without / ? # % or spaces");
}

}  // namespace

replica::impl::impl(replica_options o)
    : options(std::move(o)),
      push_batch_size(std::min(or_default(options.tuning.push_batch_size, tuning::push_batch_size),
                               protocol::tuning::max_changes_per_batch)),
      push_batch_bytes(or_default(options.tuning.push_batch_bytes, tuning::push_batch_bytes)),
      pull_page_limit(std::min(or_default(options.tuning.pull_page_limit, tuning::pull_page_limit),
                               protocol::tuning::max_pull_limit)),
      backoff_base(or_default(options.tuning.backoff_base, tuning::backoff_base)),
      backoff_cap(or_default(options.tuning.backoff_cap, tuning::backoff_cap)),
      request_timeout(or_default(options.tuning.request_timeout, tuning::request_timeout)),
      max_attempts(or_default(options.tuning.max_attempts, tuning::max_attempts)),
      jitter(options.tuning.jitter < 0 ? tuning::jitter : std::min(options.tuning.jitter, 1.0)),
      clock(options.seams.wall_ms ? protocol::hlc_clock::wall_fn(options.seams.wall_ms)
                                  : protocol::hlc_clock::wall_fn(protocol::hlc_clock::system_wall_ms)),
      rng(std::random_device{}()),
      blobs(options.path),
      blob_cache_bytes(or_default(options.blob_cache_bytes, tuning::blob_cache_bytes)) {
    if (!options.seams.sleep) options.seams.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    if (!options.seams.random) options.seams.random = [this] { return rng(); };
}

replica::replica(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
replica::~replica() = default;

result<std::unique_ptr<replica>> replica::open(replica_options options) {
    return guarded([&]() -> result<std::unique_ptr<replica>> {
        if (options.path.empty()) return make_error(errc::invalid_argument, "replica path is empty");
        auto p = std::make_unique<impl>(std::move(options));
        p->store = std::make_unique<detail::local_store>(p->options.path);
        p->net = p->options.transport_override;
        if (!p->net) p->net = make_http_transport(p->options.http);  // nullptr in the embedded build
        p->blob_net = p->make_blob_transport();
        // Stamps of new edits must order after those made before a restart, even if the wall
        // clock stepped back in between.
        if (auto last = p->store->meta("hlc"))
            if (auto h = protocol::hlc::parse(*last)) p->clock.observe(*h);
        return std::unique_ptr<replica>(new replica(std::move(p)));
    });
}

result<void> replica::configure(const std::string& server_url, const std::string& token) {
    return guarded([&]() -> result<void> {
        if (!protocol::is_valid_utf8(server_url) || !protocol::is_valid_utf8(token))
            return make_error(errc::invalid_utf8, "server URL and token must be UTF-8");
        for (const char c : token)
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F)
                return make_error(errc::invalid_argument, "the token may not contain spaces or control characters");
        std::lock_guard lock(impl_->mutex);
        sqlite::write_transaction tx(impl_->store->db());
        impl_->store->set_meta("server_url", server_url);
        impl_->store->set_meta("token", token);
        tx.commit();
        return {};
    });
}

namespace {

// The one place a local edit enters the outbox. Runs inside a transaction with the mutex held.
record apply_edit(replica::impl& im, const std::string& collection, const std::string& id, std::string unit_id,
                  bool deleted, const json& data) {
    auto& st = *im.store;
    auto existing = st.find_record(collection, id);
    record_row rec;
    if (existing) {
        rec = std::move(*existing);
        if (unit_id.empty()) unit_id = rec.unit_id;
    } else {
        rec.collection = collection;
        rec.id = id;
        rec.server_deleted = true;  // nothing on the server as far as we know
    }
    if (unit_id.empty()) throw failure(errc::invalid_argument, "a new record needs a unit_id");
    if (!protocol::valid_id(unit_id)) throw failure(errc::invalid_argument, "unit_id '" + unit_id + "' is not a valid id");

    const auto stamp = im.clock.now().to_string();
    const auto content = deleted ? std::optional<std::string>() : dump_or_null(data);
    auto rows = st.outbox_for(collection, id);
    outbox_row* unsent = nullptr;
    const outbox_row* in_flight = nullptr;
    for (auto& r : rows) {
        if (r.batch_id)
            in_flight = &r;
        else
            unsent = &r;
    }

    bool forget = false;
    if (unsent) {
        // Coalesce: the unsent change takes the latest content and keeps its base. A record
        // created here and deleted before the server ever saw it needs no change at all.
        if (deleted && unsent->base_version == 0 && !in_flight && rec.server_version == 0) {
            st.delete_outbox(unsent->seq);
            forget = true;
        } else {
            unsent->unit_id = unit_id;
            unsent->deleted = deleted;
            unsent->data = content;
            unsent->hlc = stamp;
            st.update_outbox(*unsent);
        }
    } else {
        outbox_row row;
        row.change_id = make_uuid_v7();
        row.collection = collection;
        row.id = id;
        row.unit_id = unit_id;
        row.deleted = deleted;
        row.data = content;
        row.hlc = stamp;
        if (in_flight) {
            // Edited on top of a change the server has not answered yet: its base becomes the
            // version that change gets (set when the answer arrives, see sync.cpp).
            row.base_version = in_flight->base_version;
            row.base_data = in_flight->deleted ? std::nullopt : in_flight->data;
        } else {
            row.base_version = rec.server_version;
            row.base_data = rec.server_deleted ? std::nullopt : rec.server_data;
        }
        st.insert_outbox(row);
    }
    st.set_meta("hlc", stamp);

    rec.unit_id = unit_id;
    rec.local_deleted = deleted;
    rec.local_data = content;
    if (forget) {
        st.delete_record(collection, id);
        rec.state = static_cast<int>(sync_state::synced);
        return to_record(rec);
    }
    rec.state = static_cast<int>(sync_state::pending);
    rec.state_version = 0;
    rec.reason_code.reset();
    rec.reason_message.reset();
    rec.conflict_id.reset();
    rec.held_data.reset();
    rec.resolution.reset();
    st.save_record(rec);
    return to_record(rec);
}

void check_data(const replica::impl& im, const std::string& collection, const json& data) {
    if (!data.is_object()) throw failure(errc::invalid_argument, "record data must be a JSON object");
    try {
        (void)data.dump();  // nlohmann refuses ill-formed UTF-8 here
    } catch (const json::type_error&) {
        throw failure(errc::invalid_utf8, "record data holds a string that is not valid UTF-8");
    }
    if (!im.options.schema) return;
    const auto* c = im.options.schema->find(collection);
    if (!c) throw failure(errc::schema_violation, "unknown collection '" + collection + "'");
    if (auto err = im.options.schema->validate(*c, data)) throw failure(errc::schema_violation, err->message);
}

// An app writes a record whole with the fields its schema names; fields of the record held
// here that this replica's schema does not name (added by a newer schema, written by a newer
// client) are copied in, since the app cannot mean to remove what it does not know of (SPEC.md,
// "Versions and the handshake"). Without a local schema every field is the app's own.
json with_unknown_fields(const replica::impl& im, const std::string& collection, const std::string& id, json data) {
    if (!im.options.schema) return data;
    const auto* c = im.options.schema->find(collection);
    if (!c) return data;
    const auto rec = im.store->find_record(collection, id);
    if (!rec || rec->local_deleted || !rec->local_data) return data;
    const auto held = json::parse(*rec->local_data);
    if (!held.is_object()) return data;
    for (const auto& [name, value] : held.items())
        if (!data.contains(name) && c->fields.find(name) == c->fields.end()) data[name] = value;
    return data;
}

}  // namespace

result<record> replica::put(const std::string& collection, const json& data, const put_options& options) {
    return guarded([&]() -> result<record> {
        const std::string id = options.id.empty() ? make_uuid_v7() : options.id;
        check_names(collection, id);
        check_data(*impl_, collection, data);
        std::lock_guard lock(impl_->mutex);
        sqlite::write_transaction tx(impl_->store->db());
        auto r = apply_edit(*impl_, collection, id, options.unit_id, false,
                            with_unknown_fields(*impl_, collection, id, data));
        tx.commit();
        return r;
    });
}

result<std::vector<record>> replica::put_many(const std::vector<put_item>& items) {
    return guarded([&]() -> result<std::vector<record>> {
        std::vector<std::string> ids;
        ids.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            const auto& it = items[i];
            ids.push_back(it.options.id.empty() ? make_uuid_v7() : it.options.id);
            try {
                check_names(it.collection, ids.back());
                check_data(*impl_, it.collection, it.data);
            } catch (const failure& f) {
                return error{f.err().code, "item " + std::to_string(i) + ": " + f.err().message};
            }
        }
        std::lock_guard lock(impl_->mutex);
        sqlite::write_transaction tx(impl_->store->db());
        std::vector<record> out;
        out.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            try {
                out.push_back(apply_edit(*impl_, items[i].collection, ids[i], items[i].options.unit_id, false,
                                         with_unknown_fields(*impl_, items[i].collection, ids[i], items[i].data)));
            } catch (const failure& f) {
                return error{f.err().code, "item " + std::to_string(i) + ": " + f.err().message};
            }
        }
        tx.commit();
        return out;
    });
}

result<record> replica::patch(const std::string& collection, const std::string& id, const json& merge_patch) {
    return guarded([&]() -> result<record> {
        check_names(collection, id);
        if (!merge_patch.is_object()) return make_error(errc::invalid_argument, "a merge patch must be a JSON object");
        std::lock_guard lock(impl_->mutex);
        sqlite::write_transaction tx(impl_->store->db());
        auto rec = impl_->store->find_record(collection, id);
        if (!rec || rec->local_deleted) return make_error(errc::not_found, collection + "/" + id + " not found");
        auto data = parse_stored(rec->local_data);
        if (!data.is_object()) data = json::object();
        data.merge_patch(merge_patch);
        check_data(*impl_, collection, data);
        auto r = apply_edit(*impl_, collection, id, {}, false, data);
        tx.commit();
        return r;
    });
}

namespace {

// The record's data with `ref` written into `field`: set when the schema says the field holds
// one attachment, appended to the array otherwise (an array of attachments, or a field this
// replica's schema does not name). The same blob already in the array is not added twice.
json with_attachment(const replica::impl& im, const std::string& collection, const std::string& field, json data,
                     const protocol::attachment_ref& ref) {
    const protocol::field_spec* spec = nullptr;
    if (im.options.schema)
        if (const auto* c = im.options.schema->find(collection))
            if (const auto f = c->fields.find(field); f != c->fields.end()) spec = &f->second;
    const auto value = protocol::to_json(ref);
    if (spec && spec->type == protocol::field_type::attachment) {
        data[field] = value;
        return data;
    }
    const bool list = !spec || (spec->type == protocol::field_type::array && spec->items &&
                                *spec->items == protocol::field_type::attachment);
    if (!list) throw failure(errc::invalid_argument, "field '" + field + "' of " + collection + " does not hold attachments");
    auto& items = data[field];
    if (items.is_null()) items = json::array();
    if (!items.is_array())
        throw failure(errc::invalid_argument, "field '" + field + "' holds something other than a list of attachments");
    for (const auto& item : items)
        if (item.is_object() && item.value("sha256", "") == ref.sha256) return data;
    items.push_back(value);
    return data;
}

}  // namespace

std::string_view upload_state_name(upload_state s) noexcept {
    switch (s) {
        case upload_state::waiting: return "waiting";
        case upload_state::sending: return "sending";
        case upload_state::sent: return "sent";
        case upload_state::failed: return "failed";
    }
    return "waiting";
}

result<protocol::attachment_ref> replica::attach(const std::string& collection, const std::string& id,
                                                 const std::string& field, const std::string& file_path,
                                                 const std::string& name) {
    return guarded([&]() -> result<protocol::attachment_ref> {
        const auto bytes = detail::read_file_up_to(file_path, tuning::max_blob_bytes);
        std::string shown = name;
        if (shown.empty()) {
            const auto slash = file_path.find_last_of('/');
            shown = slash == std::string::npos ? file_path : file_path.substr(slash + 1);
        }
        return attach_bytes(collection, id, field, bytes, shown);
    });
}

result<protocol::attachment_ref> replica::attach_bytes(const std::string& collection, const std::string& id,
                                                       const std::string& field, std::string_view bytes,
                                                       const std::string& name) {
    return guarded([&]() -> result<protocol::attachment_ref> {
        check_names(collection, id);
        if (field.empty()) return make_error(errc::invalid_argument, "the field to attach to is empty");
        if (name.empty() || name.size() > 255)
            return make_error(errc::invalid_argument, "an attachment's name must be 1 to 255 bytes");
        if (!protocol::is_valid_utf8(name) || !protocol::is_valid_utf8(field))
            return make_error(errc::invalid_utf8, "an attachment's name and field must be UTF-8");
        if (bytes.empty()) return make_error(errc::invalid_argument, "the file is empty");
        if (static_cast<std::int64_t>(bytes.size()) > tuning::max_blob_bytes)
            return make_error(errc::invalid_argument, "the file is " + std::to_string(bytes.size()) +
                                                          " bytes; an attachment may be at most " +
                                                          std::to_string(tuning::max_blob_bytes));
        protocol::attachment_ref ref;
        ref.content_type = std::string(protocol::sniff_content_type(bytes.substr(0, 12)));
        if (ref.content_type.empty())
            return make_error(errc::invalid_argument, "'" + name + "' is not a JPEG, PNG, WebP or PDF file");
        ref.sha256 = detail::sha256::of(bytes);
        ref.size = static_cast<std::int64_t>(bytes.size());
        ref.name = name;

        // The bytes are durable in the folder before the record names them: a crash in between
        // leaves a file no record names, never a reference without bytes. Attaches take turns,
        // so that the file of one whose edit is refused can go without taking another's.
        std::lock_guard turn(impl_->attach_mutex);
        const bool wrote = impl_->blobs.size(ref.sha256) != ref.size;
        if (wrote) impl_->blobs.put(ref.sha256, bytes);
        // The edit and the queued upload, in one local transaction.
        auto recorded = guarded([&]() -> result<protocol::attachment_ref> {
            std::lock_guard lock(impl_->mutex);
            auto& st = *impl_->store;
            sqlite::write_transaction tx(st.db());
            auto rec = st.find_record(collection, id);
            if (!rec || rec->local_deleted) return make_error(errc::not_found, collection + "/" + id + " not found");
            auto data = parse_stored(rec->local_data);
            if (!data.is_object()) data = json::object();
            data = with_attachment(*impl_, collection, field, std::move(data), ref);
            check_data(*impl_, collection, data);
            apply_edit(*impl_, collection, id, {}, false, data);
            detail::upload_row u;
            u.sha256 = ref.sha256;
            u.size = ref.size;
            u.content_type = ref.content_type;
            u.name = ref.name;
            st.queue_upload(u);
            st.use_blob_file(ref.sha256, ref.size, impl_->now_ms());
            tx.commit();
            return ref;
        });
        // A refused edit leaves no file that nothing would ever remove.
        if (!recorded && wrote) {
            std::lock_guard lock(impl_->mutex);
            if (!impl_->store->has_blob_file(ref.sha256)) impl_->blobs.remove(ref.sha256);
        }
        return recorded;
    });
}

result<std::vector<upload_entry>> replica::upload_queue() {
    return guarded([&]() -> result<std::vector<upload_entry>> {
        std::lock_guard lock(impl_->mutex);
        std::vector<upload_entry> out;
        for (auto& u : impl_->store->uploads()) {
            upload_entry e;
            e.ref = {u.sha256, u.size, u.content_type, u.name};
            e.state = u.state == detail::upload_sent     ? upload_state::sent
                      : u.state == detail::upload_failed ? upload_state::failed
                      : u.sha256 == impl_->uploading     ? upload_state::sending
                                                         : upload_state::waiting;
            e.sent = u.sent;
            e.error_code = u.error_code.value_or("");
            e.error_message = u.error_message.value_or("");
            out.push_back(std::move(e));
        }
        return out;
    });
}

result<upload_report> replica::upload(const upload_options& options) {
    std::unique_lock one(impl_->upload_mutex, std::try_to_lock);
    if (!one.owns_lock()) return make_error(errc::busy, "an upload of this replica is already running");
    return guarded([&] { return impl_->run_upload(options); });
}

result<std::string> replica::download(const std::string& sha256) {
    if (!protocol::is_sha256_hex(sha256))
        return make_error(errc::invalid_argument, "'" + sha256 + "' is not a SHA-256 (64 lowercase hex digits)");
    std::lock_guard one(impl_->download_mutex);
    return guarded([&] { return impl_->run_download(sha256); });
}

result<record> replica::remove(const std::string& collection, const std::string& id) {
    return guarded([&]() -> result<record> {
        check_names(collection, id);
        std::lock_guard lock(impl_->mutex);
        sqlite::write_transaction tx(impl_->store->db());
        auto rec = impl_->store->find_record(collection, id);
        if (!rec || rec->local_deleted) return make_error(errc::not_found, collection + "/" + id + " not found");
        auto r = apply_edit(*impl_, collection, id, {}, true, nullptr);
        tx.commit();
        return r;
    });
}

result<record> replica::discard(const std::string& collection, const std::string& id) {
    return guarded([&]() -> result<record> {
        check_names(collection, id);
        std::lock_guard lock(impl_->mutex);
        auto& st = *impl_->store;
        sqlite::write_transaction tx(st.db());
        auto rec = st.find_record(collection, id);
        if (!rec) return make_error(errc::not_found, collection + "/" + id + " not found");
        if (rec->state == static_cast<int>(sync_state::conflict))
            return make_error(errc::invalid_argument,
                              collection + "/" + id +
                                  ": the change is held for review; the decision comes with a later sync");
        const auto rows = st.outbox_for(collection, id);
        for (const auto& row : rows)
            if (row.batch_id)
                return make_error(errc::busy, collection + "/" + id +
                                                  ": the change is being sent; discard it after the sync has answered");
        for (const auto& row : rows) st.delete_outbox(row.seq);
        rec->local_deleted = rec->server_deleted;
        rec->local_data = rec->server_data;
        rec->state = static_cast<int>(sync_state::synced);
        rec->state_version = 0;
        rec->reason_code.reset();
        rec->reason_message.reset();
        rec->conflict_id.reset();
        rec->held_data.reset();
        rec->resolution.reset();
        if (rec->server_version == 0) {
            // Never on the server: nothing is left of it here either.
            st.delete_record(collection, id);
            rec->local_deleted = true;
            rec->local_data.reset();
        } else {
            st.save_record(*rec);
        }
        tx.commit();
        return to_record(*rec);
    });
}

result<std::optional<record>> replica::get(const std::string& collection, const std::string& id) {
    return guarded([&]() -> result<std::optional<record>> {
        std::lock_guard lock(impl_->mutex);
        auto rec = impl_->store->find_record(collection, id);
        if (!rec) return std::optional<record>();
        return std::optional<record>(to_record(*rec));
    });
}

result<std::vector<record>> replica::list(const query& q) {
    return guarded([&]() -> result<std::vector<record>> {
        if (q.collection.empty() && !q.state)
            return make_error(errc::invalid_argument, "list needs a collection or a state");
        detail::record_filter f;
        f.collection = q.collection;
        if (q.state) f.state = static_cast<int>(*q.state);
        f.unit_id = q.unit_id;
        f.include_deleted = q.include_deleted || q.state.has_value();
        f.limit = q.limit ? static_cast<std::int64_t>(q.limit) : -1;
        f.offset = static_cast<std::int64_t>(q.offset);
        if (!q.field.empty()) {
            // SQLite JSON path from a field name or a JSON pointer; keys are quoted so that
            // names with dots or spaces work.
            std::vector<std::string> keys;
            if (q.field.front() == '/') {
                const std::string rest = q.field.substr(1);
                std::size_t start = 0;
                while (start <= rest.size()) {
                    const auto slash = rest.find('/', start);
                    std::string tok = rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
                    std::string unescaped;
                    for (std::size_t i = 0; i < tok.size(); ++i) {
                        if (tok[i] == '~' && i + 1 < tok.size()) {
                            unescaped += tok[i + 1] == '1' ? '/' : '~';
                            ++i;
                        } else {
                            unescaped += tok[i];
                        }
                    }
                    keys.push_back(unescaped);
                    if (slash == std::string::npos) break;
                    start = slash + 1;
                }
            } else {
                keys.push_back(q.field);
            }
            std::string path(1, '$');
            for (const auto& k : keys) {
                if (k.find('"') != std::string::npos)
                    return make_error(errc::invalid_argument, "field names with '\"' cannot be queried");
                path.append(".\"").append(k).append("\"");
            }
            f.json_path = std::move(path);
            if (q.value.is_string())
                f.text_value = q.value.get<std::string>();
            else if (q.value.is_boolean())
                f.int_value = q.value.get<bool>() ? 1 : 0;
            else if (q.value.is_number_integer())
                f.int_value = q.value.get<std::int64_t>();
            else if (q.value.is_number_float())
                f.real_value = q.value.get<double>();
            else if (q.value.is_null())
                f.null_value = true;
            else
                return make_error(errc::invalid_argument, "list can match a field against a string, number, boolean or null");
        }
        std::lock_guard lock(impl_->mutex);
        auto rows = impl_->store->list_records(f);
        std::vector<record> out;
        out.reserve(rows.size());
        for (const auto& r : rows) out.push_back(to_record(r));
        return out;
    });
}

result<std::int64_t> replica::pending_count() {
    return guarded([&]() -> result<std::int64_t> {
        std::lock_guard lock(impl_->mutex);
        return impl_->store->outbox_count();
    });
}

result<status_summary> replica::status() {
    return guarded([&]() -> result<status_summary> {
        std::lock_guard lock(impl_->mutex);
        status_summary s;
        s.pending = impl_->store->count_state(static_cast<int>(sync_state::pending));
        s.conflicts = impl_->store->count_state(static_cast<int>(sync_state::conflict));
        s.rejected = impl_->store->count_state(static_cast<int>(sync_state::rejected));
        s.records = impl_->store->count_live_records();
        s.cursor = impl_->store->meta("cursor").value_or("");
        s.server_url = impl_->store->meta("server_url").value_or("");
        return s;
    });
}

result<void> replica::set_transport(std::shared_ptr<transport> t) {
    std::unique_lock one(impl_->sync_mutex, std::try_to_lock);
    if (!one.owns_lock()) return make_error(errc::busy, "cannot change the transport while a sync runs");
    std::unique_lock uploads(impl_->upload_mutex, std::try_to_lock);
    if (!uploads.owns_lock()) return make_error(errc::busy, "cannot change the transport while an upload runs");
    return guarded([&]() -> result<void> {
        {
            std::lock_guard lock(impl_->mutex);  // download() reads the options
            impl_->options.transport_override = t;
        }
        impl_->net = t ? std::move(t) : std::shared_ptr<transport>(make_http_transport(impl_->options.http));
        impl_->blob_net = impl_->make_blob_transport();
        return {};
    });
}

result<void> replica::set_encoding(body_format format, bool gzip) {
    std::unique_lock one(impl_->sync_mutex, std::try_to_lock);
    if (!one.owns_lock()) return make_error(errc::busy, "cannot change the encoding while a sync runs");
    return guarded([&]() -> result<void> {
        if (format != body_format::json && format != body_format::cbor)
            return make_error(errc::invalid_argument, "unknown body format");
        impl_->options.format = format;
        {
            std::lock_guard lock(impl_->mutex);  // download() reads the options
            impl_->options.http.gzip = gzip;
        }
        // An app's own transport compresses as it likes; the default one is made anew.
        if (!impl_->options.transport_override)
            impl_->net = make_http_transport(impl_->options.http);  // nullptr when embedded
        return {};
    });
}

result<void> replica::set_http_options(const http_transport_options& options) {
    if (!has_http_transport())
        return make_error(errc::unsupported, "this build has no HTTP transport: give the replica one (set_transport)");
    if (!options.ca_file.empty() && !std::ifstream(options.ca_file))
        return make_error(errc::invalid_argument, "cannot read the CA file '" + options.ca_file + "'");
    std::unique_lock one(impl_->sync_mutex, std::try_to_lock);
    if (!one.owns_lock()) return make_error(errc::busy, "cannot change the transport while a sync runs");
    std::unique_lock uploads(impl_->upload_mutex, std::try_to_lock);
    if (!uploads.owns_lock()) return make_error(errc::busy, "cannot change the transport while an upload runs");
    return guarded([&]() -> result<void> {
        {
            std::lock_guard lock(impl_->mutex);  // download() reads the options
            impl_->options.http = options;
        }
        if (!impl_->options.transport_override) impl_->net = make_http_transport(options);
        impl_->blob_net = impl_->make_blob_transport();
        return {};
    });
}

http_transport_options replica::http_options() const {
    std::lock_guard one(impl_->sync_mutex);
    return impl_->options.http;
}

result<sync_report> replica::sync(const progress_fn& progress) {
    std::unique_lock one(impl_->sync_mutex, std::try_to_lock);
    if (!one.owns_lock()) return make_error(errc::busy, "a sync of this replica is already running");
    return guarded([&] { return impl_->run_sync(progress, {}); });
}

result<sync_report> replica::sync(const progress_fn& progress, const answer_fn& on_answer) {
    std::unique_lock one(impl_->sync_mutex, std::try_to_lock);
    if (!one.owns_lock()) return make_error(errc::busy, "a sync of this replica is already running");
    return guarded([&] { return impl_->run_sync(progress, on_answer); });
}

result<void> replica::forward(const protocol::change& c) {
    return guarded([&]() -> result<void> {
        check_names(c.collection, c.id);
        if (!protocol::valid_id(c.change_id) || !protocol::valid_id(c.unit_id))
            return make_error(errc::invalid_argument, "a forwarded change needs a valid change_id and unit_id");
        std::lock_guard lock(impl_->mutex);
        sqlite::write_transaction tx(impl_->store->db());
        auto& st = *impl_->store;
        if (st.outbox_by_change_id(c.change_id)) return {};
        // The results of a sync need the record's row; its local copy stays what the server
        // last sent (the relay's own copy is the server's, never an edit).
        if (!st.find_record(c.collection, c.id)) {
            record_row rec;
            rec.collection = c.collection;
            rec.id = c.id;
            rec.unit_id = c.unit_id;
            rec.server_deleted = true;
            rec.local_deleted = true;
            st.save_record(rec);
        }
        outbox_row row;
        row.change_id = c.change_id;
        row.collection = c.collection;
        row.id = c.id;
        row.unit_id = c.unit_id;
        row.deleted = c.op == protocol::op_kind::del;
        row.data = row.deleted || c.data.is_null() ? std::nullopt : std::optional<std::string>(c.data.dump());
        row.base_version = c.base_version;
        row.hlc = c.stamp ? c.stamp->to_string() : std::string();
        // The wire form is fixed now: the batching in sync.cpp sends a stored wire form as it is.
        row.wire = protocol::encode(c).dump();
        st.insert_outbox(row);
        tx.commit();
        return {};
    });
}

}  // namespace fieldsync::client
