import { describe, expect, it } from 'vitest';
import { mapLink, mapSearchLink, parseCoordinates } from '../../src/cabinet/geo.js';

// Stores are an address plus a pasted point (issue #15): what map apps copy must be read, in the
// right order (Yandex writes longitude first), and anything else refused rather than guessed.
describe('store coordinates from pasted text and map links', () => {
  const moscow = { latitude: 55.7558, longitude: 37.6173 };
  it.each([
    ['55.7558, 37.6173'],
    ['55.7558 37.6173'],
    ['55.7558,37.6173'],
    ['55,7558 37,6173'],
    ['55,7558; 37,6173'],
    ['https://www.openstreetmap.org/?mlat=55.7558&mlon=37.6173#map=18/55.7558/37.6173'],
    ['https://www.openstreetmap.org/#map=17/55.7558/37.6173'],
    ['https://yandex.ru/maps/213/moscow/?ll=37.6173%2C55.7558&z=17'],
    ['https://yandex.ru/maps/?pt=37.6173,55.7558&z=17&l=map'],
    ['https://www.google.com/maps/place/Red+Square/@55.7558,37.6173,17z/data=!3m1'],
    ['https://www.google.com/maps/place/X/@55.70,37.60,15z/data=!4m6!3m5!3d55.7558!4d37.6173'],
    ['https://maps.google.com/?q=55.7558,37.6173'],
  ])('%s', (input) => {
    expect(parseCoordinates(input)).toEqual(moscow);
  });

  it.each([[''], ['Тверская 7'], ['95, 37.6'], ['55.7, 190'], ['https://yandex.ru/maps/org/kofeynya/123/'], ['https://example.com/'], ['55.7558']])('refuses %j', (input) => {
    expect(parseCoordinates(input)).toBeUndefined();
  });

  it('keeps six decimals and builds the map links', () => {
    expect(parseCoordinates('-33.86881234567, 151.2092955')).toEqual({ latitude: -33.868812, longitude: 151.209296 });
    expect(mapLink(moscow)).toBe('https://www.openstreetmap.org/?mlat=55.7558&mlon=37.6173#map=18/55.7558/37.6173');
    expect(mapSearchLink('Москва, Тверская ул., 7')).toBe('https://www.openstreetmap.org/search?query=%D0%9C%D0%BE%D1%81%D0%BA%D0%B2%D0%B0%2C%20%D0%A2%D0%B2%D0%B5%D1%80%D1%81%D0%BA%D0%B0%D1%8F%20%D1%83%D0%BB.%2C%207');
  });
});
