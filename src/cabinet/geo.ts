/**
 * Store locations in the cabinet: the owner names the store by its address and gives its point on a
 * map. Geocoding (address → coordinates) needs an online service this instance may not reach, so
 * the point is pasted: "55.7558, 37.6173" as map apps copy it, or the link of the place on
 * OpenStreetMap, Yandex Maps or Google Maps. The address is stored next to the coordinates.
 */
export interface Point {
  latitude: number;
  longitude: number;
}

const NUM = String.raw`-?\d{1,3}(?:\.\d+)?`;
const round = (n: number) => Math.round(n * 1e6) / 1e6;

function point(lat: string, lon: string): Point | undefined {
  const latitude = Number(lat);
  const longitude = Number(lon);
  if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return undefined;
  if (Math.abs(latitude) > 90 || Math.abs(longitude) > 180) return undefined;
  return { latitude: round(latitude), longitude: round(longitude) };
}

/** Coordinates from what an owner pastes, or undefined when none can be read. */
export function parseCoordinates(input: string): Point | undefined {
  const text = input.trim();
  if (!text) return undefined;
  let decoded = text;
  try {
    decoded = decodeURIComponent(text);
  } catch {
    // a stray % in pasted text: read it as it is
  }
  if (/^https?:\/\//i.test(decoded)) {
    // Yandex writes longitude first: ll=37.61,55.75 (also pt= and whatshere[point]=).
    const yandex = /[?&](?:ll|pt|whatshere\[point\])=(NUM),(NUM)/.source.replace(/NUM/g, NUM);
    const osmMarker = new RegExp(String.raw`[?&]mlat=(${NUM})&mlon=(${NUM})`).exec(decoded);
    if (osmMarker) return point(osmMarker[1], osmMarker[2]);
    if (/yandex\./i.test(decoded)) {
      const m = new RegExp(yandex).exec(decoded);
      return m ? point(m[2], m[1]) : undefined;
    }
    // Google: the place's own point (!3d…!4d…) is more exact than the view's centre (@lat,lon).
    const place = new RegExp(String.raw`!3d(${NUM})!4d(${NUM})`).exec(decoded);
    if (place) return point(place[1], place[2]);
    const at = new RegExp(String.raw`@(${NUM}),(${NUM})`).exec(decoded);
    if (at) return point(at[1], at[2]);
    const query = new RegExp(String.raw`[?&](?:q|query|ll)=(${NUM}),\s*(${NUM})`).exec(decoded);
    if (query) return point(query[1], query[2]);
    const osmView = new RegExp(String.raw`#map=\d+(?:\.\d+)?/(${NUM})/(${NUM})`).exec(decoded);
    if (osmView) return point(osmView[1], osmView[2]);
    return undefined;
  }
  // "55.7558, 37.6173", "55.7558 37.6173", "55,7558 37,6173" (decimal commas, then a space).
  const dots = new RegExp(String.raw`^(${NUM})\s*[,;\s]\s*(${NUM})$`).exec(text);
  if (dots) return point(dots[1], dots[2]);
  const commas = /^(-?\d{1,3}),(\d+)\s*[;\s]\s*(-?\d{1,3}),(\d+)$/.exec(text);
  if (commas) return point(`${commas[1]}.${commas[2]}`, `${commas[3]}.${commas[4]}`);
  return undefined;
}

export function formatCoordinates(p: Point): string {
  return `${p.latitude}, ${p.longitude}`;
}

/** OpenStreetMap with a marker on the point (no key, no script on our side: a plain link). */
export function mapLink(p: Point): string {
  return `https://www.openstreetmap.org/?mlat=${p.latitude}&mlon=${p.longitude}#map=18/${p.latitude}/${p.longitude}`;
}

/** OpenStreetMap's search for an address: where the owner finds the point to paste. */
export function mapSearchLink(address: string): string {
  return `https://www.openstreetmap.org/search?query=${encodeURIComponent(address)}`;
}
