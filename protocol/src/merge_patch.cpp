#include <fieldsync/protocol/merge_patch.hpp>

namespace fieldsync::protocol {

json merge_diff(const json& from, const json& to) {
    if (!from.is_object() || !to.is_object()) return to;
    auto patch = json::object();
    for (const auto& [key, _] : from.items())
        if (!to.contains(key)) patch[key] = nullptr;
    for (const auto& [key, value] : to.items()) {
        const auto it = from.find(key);
        if (it == from.end())
            patch[key] = value;
        else if (*it != value)
            patch[key] = (it->is_object() && value.is_object()) ? merge_diff(*it, value) : value;
    }
    return patch;
}

bool contains_null(const json& j) {
    if (j.is_null()) return true;
    if (j.is_object() || j.is_array()) {
        for (const auto& v : j)
            if (contains_null(v)) return true;
    }
    return false;
}

}  // namespace fieldsync::protocol
