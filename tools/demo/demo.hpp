#pragma once
// The district's demo data set (issue 8): the unit tree, members, yearly registrations,
// committee reviews, study sessions, the district's inspections and their conclusions, in
// the size and shape of the district's 2014 campaign. Names and figures come from
// tools/demo/giong-trom.json, compiled in.
//
// The generator only builds records (it depends on fieldsync::protocol alone), so the same
// data set can be written into a central store (demo_store.hpp) or into client-lib replicas
// (a commune's share, base_organisation_of). The same options and seed always give the same
// data set, byte for byte. Pure functions; thread-safe.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/messages.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace fieldsync::demo {

using protocol::json;

struct options {
    std::string district = "Giồng Trôm";   // matched NFC or NFD, with or without "Huyện ủy"
    std::uint64_t seed = 2014;
    int communes = 12;                      // communes taken from the list, in its order (1..22)
    int members = 2000;                     // party members spread over the cells
    int year = 2014;                        // the campaign year of the article
};

struct unit_row {
    std::string id;
    std::string parent;                     // "" for the district
    std::string name;
    std::string kind;                       // district | commune | cell | office
};

/// One write: the first write of (collection, id) creates the record, a later one in the
/// same data set is an edit of it (a registration reviewed by its cell's committee).
struct record {
    std::string collection;
    std::string id;
    std::string unit_id;
    json data;
};

/// A device the demo registers, so a newcomer can sign in with each role.
struct device_row {
    std::string name;
    std::string unit_id;
    std::string role;                       // admin | reviewer | field
};

/// Two devices of the demo that edited the same record from the same version, as phones do
/// offline (a cell secretary's phone and the commune office's laptop): loaded after the
/// records, through the store's write path, so the second change opens a conflict of the
/// kind `fields` names. The demo leaves most open for the reviewer to try; one is resolved and
/// one dismissed by the commune's reviewer, so every status shows.
struct edit_race {
    std::string collection;
    std::string id;
    std::string unit_id;
    std::size_t first_device = 0;           // indexes into data_set::devices
    std::size_t second_device = 0;
    json first;                             // what the first device wrote (null: it deleted the record)
    json second;                            // what the second wrote from the same version (null: a delete)
    std::vector<std::string> fields;        // the colliding fields the store will name ("" = whole record)
    std::string outcome;                    // open | resolved | dismissed
    std::string choice;                     // resolved: keep_head | take_incoming
    std::string note;                       // the reviewer's note, when closed
    std::size_t reviewer = 0;               // index into data_set::devices, when closed
};

struct data_set {
    std::vector<unit_row> units;            // parents before children
    std::vector<record> records;            // in write order
    std::vector<device_row> devices;
    std::string period;                     // the review period the reviews are in ("2014-Q2")
    std::vector<edit_race> races;           // after the records
};

/// Builds the data set. Errors: bad_request for a district the names do not know, or
/// communes / members out of range (the message says which).
protocol::expected<data_set> generate(const options& o);

/// The base organisation (child of the district) that holds `unit_id`, or "" for the
/// district itself and for units not in the data set.
std::string base_organisation_of(const data_set& d, const std::string& unit_id);

/// An ASCII id from Vietnamese text: diacritics dropped, đ -> d, lower case, words joined
/// by '-' ("Bình Hòa" -> "binh-hoa"). NFC and NFD input give the same id.
std::string slug(std::string_view text);

}  // namespace fieldsync::demo
