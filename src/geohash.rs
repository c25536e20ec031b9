//! Geohashes as Redis' GEO commands use them (geohash.c, geohash_helper.c):
//! a point is a 52-bit integer interleaving 26 bits of latitude (even bits)
//! and 26 of longitude (odd bits), stored as a sorted set score. A search
//! covers its shape with the cell of a suitable precision and its eight
//! neighbours, then filters the members of those score ranges by distance.
//!
//! Every step follows Redis' arithmetic exactly (same ranges, same order of
//! floating point operations), because the replies expose it: coordinates
//! are cell centres, and which cells are searched decides the order of
//! unsorted results.

/// Latitudes beyond these have no Web Mercator projection.
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
/// Bits per coordinate of a stored point.
pub const STEP_MAX: u8 = 26;

const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

const LONG_RANGE: Range = Range { min: LONG_MIN, max: LONG_MAX };
const LAT_RANGE: Range = Range { min: LAT_MIN, max: LAT_MAX };

/// A cell: `step` bits per coordinate, interleaved. Step 0 marks "no cell".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    const NONE: Cell = Cell { bits: 0, step: 0 };

    fn is_none(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The scores [min, max) of the stored points inside this cell.
    pub fn score_range(&self) -> (u64, u64) {
        let shift = 52 - 2 * self.step as u32;
        (self.bits << shift, (self.bits + 1) << shift)
    }
}

/// A cell's extent.
#[derive(Clone, Copy, Debug)]
pub struct Area {
    pub lon: Range,
    pub lat: Range,
}

/// Spreads the low 32 bits of `v` to the even bits of the result.
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// The inverse of `spread`: the even bits of `v`, packed.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// The cell of `step` bits holding (lon, lat) within the given ranges, or
/// None outside them.
fn encode(lon_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < lon_range.min || lon > lon_range.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let lon_offset = (lon - lon_range.min) / (lon_range.max - lon_range.min) * scale;
    Some(Cell { bits: spread(lat_offset as u32) | (spread(lon_offset as u32) << 1), step })
}

/// The 52-bit score of a point, or None if it cannot be indexed.
pub fn encode_point(lon: f64, lat: f64) -> Option<u64> {
    encode(LONG_RANGE, LAT_RANGE, lon, lat, STEP_MAX).map(|c| c.bits)
}

fn decode(lon_range: Range, lat_range: Range, cell: Cell) -> Area {
    let (lat_cell, lon_cell) = (squash(cell.bits) as f64, squash(cell.bits >> 1) as f64);
    let scale = (1u64 << cell.step) as f64;
    let (lat_span, lon_span) = (lat_range.max - lat_range.min, long_span(lon_range));
    Area {
        lat: Range { min: lat_range.min + (lat_cell * 1.0 / scale) * lat_span, max: lat_range.min + ((lat_cell + 1.0) * 1.0 / scale) * lat_span },
        lon: Range { min: lon_range.min + (lon_cell * 1.0 / scale) * lon_span, max: lon_range.min + ((lon_cell + 1.0) * 1.0 / scale) * lon_span },
    }
}

fn long_span(r: Range) -> f64 {
    r.max - r.min
}

/// The point a score stands for: the centre of its cell, clamped to the
/// valid ranges.
pub fn decode_point(score: f64) -> (f64, f64) {
    let area = decode(LONG_RANGE, LAT_RANGE, Cell { bits: score as u64, step: STEP_MAX });
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of a stored score (re-encoded over
/// latitudes ±90, as geohash.org expects; the 11th character is always '0').
pub fn to_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_point(score);
    let world = (Range { min: -180.0, max: 180.0 }, Range { min: -90.0, max: 90.0 });
    let bits = encode(world.0, world.1, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().take(10).enumerate() {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

/// Moves a cell one step east (+1) or west (-1): longitude is the odd bits.
fn move_x(c: &mut Cell, d: i8) {
    let x = c.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = c.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - 2 * c.step as u32);
    let x = if d > 0 { x.wrapping_add(zz + 1) } else { (x | zz).wrapping_sub(zz + 1) };
    c.bits = (x & (0xaaaa_aaaa_aaaa_aaaau64 >> (64 - 2 * c.step as u32))) | y;
}

/// Moves a cell one step north (+1) or south (-1): latitude is the even bits.
fn move_y(c: &mut Cell, d: i8) {
    let x = c.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = c.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - 2 * c.step as u32);
    let y = if d > 0 { y.wrapping_add(zz + 1) } else { (y | zz).wrapping_sub(zz + 1) };
    c.bits = x | (y & (0x5555_5555_5555_5555u64 >> (64 - 2 * c.step as u32)));
}

fn moved(c: Cell, dx: i8, dy: i8) -> Cell {
    let mut n = c;
    if dx != 0 {
        move_x(&mut n, dx);
    }
    if dy != 0 {
        move_y(&mut n, dy);
    }
    n
}

fn deg_rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn rad_deg(r: f64) -> f64 {
    r / (std::f64::consts::PI / 180.0)
}

/// Meters between two latitudes on a meridian.
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Great-circle distance in meters (haversine), as Redis computes it.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    // Same longitude: the cheaper meridian distance (Redis' shortcut).
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// What a search covers, in the unit of its arguments (`to_meters` converts).
#[derive(Clone, Copy, Debug)]
pub enum Extent {
    Radius(f64),
    /// Width, height.
    Box(f64, f64),
}

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub extent: Extent,
    pub to_meters: f64,
}

impl Shape {
    /// The distance in meters from the centre to (lon, lat) if the point is
    /// inside the shape.
    pub fn distance_if_inside(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.extent {
            Extent::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.to_meters).then_some(d)
            }
            Extent::Box(w, h) => {
                let (w, h) = (w * self.to_meters, h * self.to_meters);
                if lat_distance(lat, self.lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// [min lon, min lat, max lon, max lat] around the shape.
    fn bounds(&self) -> [f64; 4] {
        let (w, h) = match self.extent {
            Extent::Radius(r) => (r, r),
            Extent::Box(w, h) => (w / 2.0, h / 2.0),
        };
        let (width, height) = (self.to_meters * w, self.to_meters * h);
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(self.lat + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(self.lat - lat_delta).cos());
        // Hemispheres are mirrored: take the wider edge.
        let delta = if self.lat < 0.0 { long_delta_bottom } else { long_delta_top };
        [self.lon - delta, self.lat - lat_delta, self.lon + delta, self.lat + lat_delta]
    }

    /// The cells to search, in Redis' order (centre, N, S, E, W, NE, NW,
    /// SE, SW), without the ones that cannot hold a match and without a
    /// cell equal to the previous one searched.
    pub fn cells(&self) -> Vec<Cell> {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius = match self.extent {
            Extent::Radius(r) => r,
            Extent::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        } * self.to_meters;
        let mut steps = estimate_steps(radius, self.lat);
        let around = |steps: u8| {
            let c = encode(LONG_RANGE, LAT_RANGE, self.lon, self.lat, steps).unwrap_or(Cell { bits: 0, step: steps });
            let n = [moved(c, 0, 1), moved(c, 0, -1), moved(c, 1, 0), moved(c, -1, 0), moved(c, 1, 1), moved(c, -1, 1), moved(c, 1, -1), moved(c, -1, -1)];
            (c, n)
        };
        let (mut centre, mut n) = around(steps);
        // A neighbour too small to reach the shape's edge: one step coarser.
        let area = |c: Cell| decode(LONG_RANGE, LAT_RANGE, c);
        let too_fine = area(n[0]).lat.max < max_lat || area(n[1]).lat.min > min_lat || area(n[2]).lon.max < max_lon || area(n[3]).lon.min > min_lon;
        if steps > 1 && too_fine {
            steps -= 1;
            (centre, n) = around(steps);
        }
        let [north, south, east, west, north_east, north_west, south_east, south_west] = &mut n;
        if steps >= 2 {
            let a = area(centre);
            if a.lat.min < min_lat {
                [*south, *south_west, *south_east] = [Cell::NONE; 3];
            }
            if a.lat.max > max_lat {
                [*north, *north_east, *north_west] = [Cell::NONE; 3];
            }
            if a.lon.min < min_lon {
                [*west, *south_west, *north_west] = [Cell::NONE; 3];
            }
            if a.lon.max > max_lon {
                [*east, *south_east, *north_east] = [Cell::NONE; 3];
            }
        }
        let mut out: Vec<Cell> = Vec::with_capacity(9);
        for c in std::iter::once(centre).chain(n) {
            // With a huge radius, adjacent cells can coincide; Redis skips
            // a repeat of the last neighbour searched (not of the centre).
            if c.is_none() || (out.len() > 1 && out.last() == Some(&c)) {
                continue;
            }
            out.push(c);
        }
        out
    }
}

/// The precision whose cells are about as large as the radius.
fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let (mut range, mut step) = (range_meters, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    // Meridians converge towards the poles: wider cells.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        // Palermo, as in Redis' documentation.
        let bits = encode_point(13.361389, 38.115556).unwrap();
        assert_eq!(bits, 3479099956230698);
        let (lon, lat) = decode_point(bits as f64);
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(&to_string(bits as f64), b"sqc8b49rny0");
        assert_eq!(encode_point(0.0, 86.0), None);
    }

    #[test]
    fn interleave_is_reversible() {
        for v in [0u32, 1, 0x3ff_ffff, 0x1234567, u32::MAX] {
            assert_eq!(squash(spread(v)), v);
        }
    }

    #[test]
    fn palermo_catania_distance() {
        let d = distance(13.361389338970184, 38.115556395496299, 15.087267458438873, 37.50266842333162);
        assert!((d - 166274.1516).abs() < 0.001, "{}", d);
    }
}
