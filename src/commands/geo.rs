//! Geo commands (Redis' geo.c): points stored as sorted set members whose
//! scores are 52-bit geohashes (`crate::geohash`). GEOADD is a ZADD; the
//! searches scan the score ranges of the cells around the shape.

use super::zsets::{add_pairs, read_zset, store_zset, AddFlags};
use super::{cmd, flags::*, ArgList, Args, Command, Ctx, Run};
use crate::geohash::{self, Extent, Shape};
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::server::txn::gather_span;
use crate::types::zset::Limits;
use crate::types::Zset;
use crate::util::parse_double;

const G: &str = "geo";

pub static COMMANDS: &[Command] = &[
    cmd("geoadd", -5, WRITE | DENYOOM, (1, 1, 1), G, "3.2.0", "Add one or more geospatial items in the geospatial index represented using a sorted set", Run::Shard(geoadd)),
    cmd("geodist", -4, READONLY, (1, 1, 1), G, "3.2.0", "Returns the distance between two members of a geospatial index", Run::Shard(geodist)),
    cmd("geohash", -2, READONLY, (1, 1, 1), G, "3.2.0", "Returns members of a geospatial index as standard geohash strings", Run::Shard(geohash_cmd)),
    cmd("geopos", -2, READONLY, (1, 1, 1), G, "3.2.0", "Returns longitude and latitude of members of a geospatial index", Run::Shard(geopos)),
    cmd("georadius", -6, WRITE | DENYOOM, (1, 1, 1), G, "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", Run::Span(georadius, gather_span)).with_keys(radius_keys),
    cmd("georadius_ro", -6, READONLY, (1, 1, 1), G, "3.2.10", "A read-only variant for GEORADIUS", Run::Shard(georadius_ro)),
    cmd("georadiusbymember", -5, WRITE | DENYOOM, (1, 1, 1), G, "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", Run::Span(georadiusbymember, gather_span)).with_keys(radius_keys),
    cmd("georadiusbymember_ro", -5, READONLY, (1, 1, 1), G, "3.2.10", "A read-only variant for GEORADIUSBYMEMBER", Run::Shard(georadiusbymember_ro)),
    cmd("geosearch", -7, READONLY, (1, 1, 1), G, "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", Run::Shard(geosearch)),
    cmd("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), G, "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", Run::Span(geosearchstore, gather_span)),
];

/// GEORADIUS[BYMEMBER]'s keys: the STORE/STOREDIST destination (the last one
/// given wins, as in Redis) first, since it is the key written, then the source.
fn radius_keys(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    let mut store = 0..0;
    let mut i = 5;
    while i < a.argc() {
        let arg = a.arg(i);
        if (arg.eq_ignore_ascii_case(b"store") || arg.eq_ignore_ascii_case(b"storedist")) && i + 1 < a.argc() {
            store = i + 1..i + 2;
            i += 1;
        }
        i += 1;
    }
    [store, 1..2]
}

/// Meters per unit, or Redis' error.
fn unit(r: &mut Reply, u: &[u8]) -> Option<f64> {
    let m = match u.to_ascii_lowercase().as_slice() {
        b"m" => 1.0,
        b"km" => 1000.0,
        b"ft" => 0.3048,
        b"mi" => 1609.34,
        _ => {
            r.error("ERR unsupported unit provided. please use M, KM, FT, MI");
            return None;
        }
    };
    Some(m)
}

/// A longitude/latitude argument pair, validated.
fn lon_lat(r: &mut Reply, lon: &[u8], lat: &[u8]) -> Option<(f64, f64)> {
    let (Some(lon), Some(lat)) = (parse_double(lon), parse_double(lat)) else {
        r.error(err::NOT_FLOAT);
        return None;
    };
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon) || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat) {
        r.error(&format!("ERR invalid longitude,latitude pair {:.6},{:.6}", lon, lat));
        return None;
    }
    Some((lon, lat))
}

/// A radius and its unit: (radius, meters per unit).
fn radius(r: &mut Reply, value: &[u8], u: &[u8]) -> Option<(f64, f64)> {
    let Some(d) = parse_double(value) else {
        r.error("ERR need numeric radius");
        return None;
    };
    if d < 0.0 {
        r.error("ERR radius cannot be negative");
        return None;
    }
    Some((d, unit(r, u)?))
}

/// A box's width, height and unit: (width, height, meters per unit).
fn box_size(r: &mut Reply, w: &[u8], h: &[u8], u: &[u8]) -> Option<(f64, f64, f64)> {
    let Some(w) = parse_double(w) else {
        r.error("ERR need numeric width");
        return None;
    };
    let Some(h) = parse_double(h) else {
        r.error("ERR need numeric height");
        return None;
    };
    if h < 0.0 || w < 0.0 {
        r.error("ERR height or width cannot be negative");
        return None;
    }
    Some((w, h, unit(r, u)?))
}

/// A coordinate as Redis prints it (ld2string's human mode: `%.17Lf` of the
/// value, trailing zeros dropped): a bulk string in RESP2, a double in RESP3.
fn coordinate(r: &mut Reply, v: f64) {
    let mut s = format!("{:.17}", v);
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    if s == "-0" {
        s = "0".into();
    }
    if r.is_resp3() {
        r.raw(format!(",{}\r\n", s).as_bytes());
    } else {
        r.bulk(s.as_bytes());
    }
}

/// A distance with four decimals, as Redis replies it.
fn reply_distance(r: &mut Reply, d: f64) {
    r.bulk(format!("{:.4}", d).as_bytes());
}

fn geoadd(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < a.len() {
        match a.get(i).to_ascii_lowercase().as_slice() {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"ch" => f.ch = true,
            _ => break,
        }
        i += 1;
    }
    let left = a.len() - i;
    if left % 3 != 0 || left == 0 || (f.nx && f.xx) {
        return r.error(err::SYNTAX);
    }
    let mut max_member = 0;
    for j in (i..a.len()).step_by(3) {
        if lon_lat(r, a.get(j), a.get(j + 1)).is_none() {
            return;
        }
        max_member = max_member.max(a.get(j + 2).len());
    }
    let point = |j: usize| {
        let (lon, lat) = (parse_double(a.get(j)).unwrap_or_default(), parse_double(a.get(j + 1)).unwrap_or_default());
        geohash::encode_point(lon, lat).unwrap_or_default() as f64
    };
    let pairs = (i..a.len()).step_by(3).map(|j| (point(j), a.get(j + 2)));
    add_pairs(ctx, r, a.get(1), pairs, left / 3, max_member, &f);
}

fn geodist(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let to_meters = match a.len() {
        4 => 1.0,
        5 => match unit(r, a.get(4)) {
            Some(u) => u,
            None => return,
        },
        _ => return r.error(err::SYNTAX),
    };
    let z = match read_zset(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.null(),
        Ok(Some(z)) => z,
    };
    let (Some(s1), Some(s2)) = (z.score(a.get(2)), z.score(a.get(3))) else { return r.null() };
    let ((lon1, lat1), (lon2, lat2)) = (geohash::decode_point(s1), geohash::decode_point(s2));
    reply_distance(r, geohash::distance(lon1, lat1, lon2, lat2) / to_meters);
}

fn geohash_cmd(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let z = match read_zset(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    r.array(a.len() - 2);
    for m in a.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => r.bulk(&geohash::to_string(s)),
            None => r.null(),
        }
    }
}

fn geopos(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let z = match read_zset(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    r.array(a.len() - 2);
    for m in a.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => {
                let (lon, lat) = geohash::decode_point(s);
                r.array(2);
                coordinate(r, lon);
                coordinate(r, lat);
            }
            None => r.null_array(),
        }
    }
}

/// Which search command, for Redis' georadiusGeneric.
#[derive(Clone, Copy, PartialEq)]
enum Search {
    /// GEORADIUS: lon lat radius unit.
    Radius,
    /// GEORADIUSBYMEMBER: member radius unit.
    ByMember,
    /// GEOSEARCH / GEOSEARCHSTORE: FROM... and BY... options.
    Search,
}

/// A member found by a search.
struct Found {
    member: Box<[u8]>,
    score: f64,
    lon: f64,
    lat: f64,
    /// Meters from the centre.
    dist: f64,
}

/// The members inside `shape`, cell by cell in Redis' order; with `limit`
/// (COUNT ... ANY) it stops once that many are found.
fn members_in(z: &Zset, shape: &Shape, limit: usize) -> Vec<Found> {
    let mut found = Vec::new();
    for cell in shape.cells() {
        if limit != 0 && found.len() >= limit {
            break;
        }
        let (min, max) = cell.score_range();
        let (min, max) = (min as f64, max as f64);
        let lo = z.count_while(|s, _| s < min);
        let hi = z.count_while(|s, _| s < max);
        if lo >= hi {
            continue;
        }
        let mut left = hi - lo;
        z.walk(lo, false, |m, s| {
            let (lon, lat) = geohash::decode_point(s);
            if let Some(dist) = shape.distance_if_inside(lon, lat) {
                found.push(Found { member: m.into(), score: s, lon, lat, dist });
            }
            left -= 1;
            left > 0 && (limit == 0 || found.len() < limit)
        });
    }
    found
}

/// The event of a stored search: GEOSEARCHSTORE's, or GEORADIUS* STORE's.
fn store_event(store_at: Option<usize>) -> &'static str {
    if store_at.is_some() {
        "geosearchstore"
    } else {
        "georadiusstore"
    }
}

/// Redis' georadiusGeneric: every search command. `store_at` is the
/// position of GEOSEARCHSTORE's destination; `no_store`: the _RO variants.
fn search(ctx: &mut Ctx, r: &mut Reply, a: Args, kind: Search, store_at: Option<usize>, no_store: bool) {
    let src = if store_at.is_some() { 2 } else { 1 };
    let z = match read_zset(ctx, a.get(src)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    let (mut centre, mut extent, mut to_meters) = (None, None, 1.0);
    let base = match kind {
        Search::Radius => {
            let Some(c) = lon_lat(r, a.get(2), a.get(3)) else { return };
            let Some((d, u)) = radius(r, a.get(4), a.get(5)) else { return };
            (centre, extent, to_meters) = (Some(c), Some(Extent::Radius(d)), u);
            6
        }
        Search::ByMember => {
            if let Some(z) = z {
                let Some(s) = z.score(a.get(2)) else { return r.error("ERR could not decode requested zset member") };
                let Some((d, u)) = radius(r, a.get(3), a.get(4)) else { return };
                (centre, extent, to_meters) = (Some(geohash::decode_point(s)), Some(Extent::Radius(d)), u);
            }
            5
        }
        Search::Search => src + 1,
    };
    let is_search = kind == Search::Search;
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut sort, mut count) = (None::<bool>, 0usize);
    let (mut store, mut storedist) = (store_at.map(|i| a.get(i)), false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut i = base;
    while i < a.len() {
        let left = a.len() - i - 1;
        let arg = a.get(i).to_ascii_lowercase();
        match arg.as_slice() {
            b"withdist" => withdist = true,
            b"withhash" => withhash = true,
            b"withcoord" => withcoord = true,
            b"any" => any = true,
            b"asc" => sort = Some(false),
            b"desc" => sort = Some(true),
            b"count" if left >= 1 => {
                match parse_i64(a.get(i + 1)) {
                    None => return r.error(err::NOT_INT),
                    Some(c) if c <= 0 => return r.error("ERR COUNT must be > 0"),
                    Some(c) => count = c as usize,
                }
                i += 1;
            }
            b"store" | b"storedist" if left >= 1 && !no_store && !is_search => {
                (store, storedist) = (Some(a.get(i + 1)), arg == b"storedist");
                i += 1;
            }
            b"storedist" if is_search && store_at.is_some() => storedist = true,
            b"frommember" if left >= 1 && is_search && !fromloc => {
                if let Some(z) = z {
                    let Some(s) = z.score(a.get(i + 1)) else { return r.error("ERR could not decode requested zset member") };
                    centre = Some(geohash::decode_point(s));
                }
                frommember = true;
                i += 1;
            }
            b"fromlonlat" if left >= 2 && is_search && !frommember => {
                let Some(c) = lon_lat(r, a.get(i + 1), a.get(i + 2)) else { return };
                centre = Some(c);
                fromloc = true;
                i += 2;
            }
            b"byradius" if left >= 2 && is_search && !bybox => {
                let Some((d, u)) = radius(r, a.get(i + 1), a.get(i + 2)) else { return };
                (extent, to_meters, byradius) = (Some(Extent::Radius(d)), u, true);
                i += 2;
            }
            b"bybox" if left >= 3 && is_search && !byradius => {
                let Some((w, h, u)) = box_size(r, a.get(i + 1), a.get(i + 2), a.get(i + 3)) else { return };
                (extent, to_meters, bybox) = (Some(Extent::Box(w, h)), u, true);
                i += 3;
            }
            _ => return r.error(err::SYNTAX),
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        let what = if store_at.is_some() { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return r.error(&format!("ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options", what));
    }
    let name = String::from_utf8_lossy(a.get(0)).into_owned();
    if is_search && !(frommember || fromloc) {
        return r.error(&format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}", name));
    }
    if is_search && !(byradius || bybox) {
        return r.error(&format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {}", name));
    }
    if any && count == 0 {
        return r.error("ERR the ANY argument requires COUNT argument");
    }
    let (Some(z), Some((lon, lat)), Some(extent)) = (z, centre, extent) else {
        // No source set.
        return match store {
            Some(dst) => {
                store_zset(ctx, dst, Zset::new_large(), store_event(store_at));
                r.int(0)
            }
            None => r.array(0),
        };
    };
    // COUNT without an order returns the nearest ones (but for ANY).
    if count != 0 && sort.is_none() && !any {
        sort = Some(false);
    }
    let shape = Shape { lon, lat, extent, to_meters };
    let mut found = members_in(z, &shape, if any { count } else { 0 });
    match sort {
        Some(false) => found.sort_by(|x, y| x.dist.total_cmp(&y.dist)),
        Some(true) => found.sort_by(|x, y| y.dist.total_cmp(&x.dist)),
        None => {}
    }
    if count != 0 {
        found.truncate(count);
    }
    if let Some(dst) = store {
        let dst = dst.to_vec();
        let mut out = Zset::new_large();
        for f in &found {
            out.set(&f.member, if storedist { f.dist / to_meters } else { f.score }, Limits::from_config());
        }
        return r.int(store_zset(ctx, &dst, out, store_event(store_at)) as i64);
    }
    let options = withdist as usize + withhash as usize + withcoord as usize;
    r.array(found.len());
    for f in &found {
        if options > 0 {
            r.array(options + 1);
        }
        r.bulk(&f.member);
        if withdist {
            reply_distance(r, f.dist / to_meters);
        }
        if withhash {
            r.int(f.score as i64);
        }
        if withcoord {
            r.array(2);
            coordinate(r, f.lon);
            coordinate(r, f.lat);
        }
    }
}

fn georadius(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    search(ctx, r, a, Search::Radius, None, false)
}

fn georadius_ro(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    search(ctx, r, a, Search::Radius, None, true)
}

fn georadiusbymember(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    search(ctx, r, a, Search::ByMember, None, false)
}

fn georadiusbymember_ro(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    search(ctx, r, a, Search::ByMember, None, true)
}

fn geosearch(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    search(ctx, r, a, Search::Search, None, true)
}

fn geosearchstore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    search(ctx, r, a, Search::Search, Some(1), false)
}
