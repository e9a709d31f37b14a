import { Rng } from './rng.ts';

/**
 * The world's built-in knowledge base: fictional countries, elements and animals with checkable
 * attributes. Fictional on purpose: a tiny LM trained on the world cannot have seen the answers
 * anywhere else, so what it knows is exactly what the world taught it.
 *
 * The base is fixed (its own constant seed, independent of the world seed), so the gold judge is a
 * pure function of (prompt, response) and a comparison file made with one seed is judged the same
 * way in any later run.
 */

export const continents = ['Arvelia', 'Borunda', 'Cestra', 'Dorvane', 'Eluria', 'Fenmark'] as const;
export const habitats = ['forest', 'desert', 'ocean', 'mountains', 'swamp', 'tundra', 'grassland'] as const;
export const diets = ['herbivore', 'carnivore', 'omnivore'] as const;
export const states = ['solid', 'liquid', 'gas'] as const;

export interface Country {
  kind: 'country';
  name: string;
  capital: string;
  /** Millions of people, an integer so answers are checkable exactly. */
  population: number;
  continent: string;
}

export interface Element {
  kind: 'element';
  name: string;
  symbol: string;
  atomicNumber: number;
  state: (typeof states)[number];
}

export interface Animal {
  kind: 'animal';
  name: string;
  legs: number;
  habitat: (typeof habitats)[number];
  diet: (typeof diets)[number];
  /** Top speed in km/h. */
  speed: number;
}

export type Entity = Country | Element | Animal;

export interface KnowledgeBase {
  countries: Country[];
  elements: Element[];
  animals: Animal[];
  /** Lower-cased entity name → entity, for the judge's lookups. */
  byName: Map<string, Entity>;
  /** Every capital, lower-cased, to spot a wrong capital given as an answer. */
  capitals: Set<string>;
}

const KB_SEED = 0x48484b31; // 'HHK1': changing it changes every fact, so it is a constant, not an option

const onsets = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'dr', 'gl', 'kr'];
const onsets2 = ['th', 'tr', 'st', 'sh', 'vr', 'h', 'j', 'w', 'qu', 'pl', 'cl', 'fl', 'gr', 'sk', 'sp', 'ch'];
const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ei', 'ou', 'ae', 'y'];
const codas = ['', '', 'n', 'r', 'l', 's', 'm', 'th', 'nd', 'rk', 'x', 'v'];
const countryEndings = ['ia', 'land', 'ova', 'mark', 'ar', 'enne', 'istan', 'ora', 'heim', 'ovia'];
const capitalEndings = ['burg', 'port', 'ton', 'mar', 'holm', 'grad', 'ford', 'vale', 'haven', 'bridge'];
const elementEndings = ['ium', 'on', 'ine', 'ite', 'gen', 'um'];
const animalHeads = ['glimmer', 'frost', 'ember', 'thorn', 'moss', 'storm', 'dusk', 'amber', 'silver', 'ash'];
const animalHeads2 = ['river', 'cinder', 'marsh', 'copper', 'shadow', 'pebble', 'sun', 'bramble', 'mist'];
const animalTails = ['fox', 'hound', 'beetle', 'hare', 'crane', 'newt', 'boar', 'lynx', 'moth', 'otter'];
const animalTails2 = ['finch', 'toad', 'stag', 'eel', 'wren', 'badger', 'gecko', 'heron', 'mole'];

// Two-letter words a response may start a sentence with; as symbols they would read as answers.
const commonWords = new Set(
  'Am An As At Be By Do Go He Hi If In Is It Me My No Of Oh Ok On Or So To Up Us We'.split(' '),
);

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function syllable(rng: Rng): string {
  return rng.pick(rng.chance(0.7) ? onsets : onsets2) + rng.pick(vowels) + rng.pick(codas);
}

/** Draws names until one is new, so every entity (and every capital) is unambiguous by name. */
function uniqueName(used: Set<string>, make: () => string): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const name = make();
    const key = name.toLowerCase();
    if (name.length >= 4 && name.length <= 14 && !used.has(key)) {
      used.add(key);
      return name;
    }
  }
  throw new Error('knowledge base: could not draw a unique name (name parts too few)');
}

function buildKnowledgeBase(counts = { countries: 90, elements: 60, animals: 80 }): KnowledgeBase {
  const rng = new Rng(KB_SEED);
  const used = new Set<string>();
  const countries: Country[] = [];
  for (let i = 0; i < counts.countries; i++) {
    const name = uniqueName(used, () => capitalise(syllable(rng) + rng.pick(countryEndings)));
    const capital = uniqueName(used, () =>
      capitalise(syllable(rng) + (rng.chance(0.5) ? syllable(rng) : '') + rng.pick(capitalEndings)),
    );
    const population = rng.chance(0.3) ? rng.int(1, 9) : rng.int(10, 240);
    countries.push({ kind: 'country', name, capital, population, continent: rng.pick(continents) });
  }
  const elements: Element[] = [];
  const numbers = rng.shuffle(Array.from({ length: 150 }, (_, k) => k + 1));
  const symbols = new Set<string>();
  for (let i = 0; i < counts.elements; i++) {
    const name = uniqueName(used, () => capitalise(syllable(rng) + syllable(rng) + rng.pick(elementEndings)));
    // Symbols: first letter plus a later letter of the name, unique, like Mg from magnesium.
    let symbol = '';
    for (let k = 1; k < name.length && !symbol; k++) {
      const candidate = name.charAt(0) + name.charAt(k).toLowerCase();
      if (/^[A-Z][a-z]$/.test(candidate) && !symbols.has(candidate) && !commonWords.has(candidate))
        symbol = candidate;
    }
    for (let k = 0; !symbol; k++) {
      const candidate = name.charAt(0) + 'abcdefghijklmnopqrstuvwxyz'.charAt(k % 26);
      if ((!symbols.has(candidate) && !commonWords.has(candidate)) || k > 52) symbol = candidate;
    }
    symbols.add(symbol);
    const state = rng.weighted({ solid: 0.6, liquid: 0.15, gas: 0.25 });
    elements.push({ kind: 'element', name, symbol, atomicNumber: numbers[i]!, state });
  }
  const animals: Animal[] = [];
  for (let i = 0; i < counts.animals; i++) {
    const name = uniqueName(used, () =>
      rng.chance(0.5)
        ? rng.pick(animalHeads) + rng.pick(animalTails)
        : rng.pick(animalHeads2) + rng.pick(animalTails2),
    );
    const legs = rng.pick([0, 2, 4, 4, 4, 6, 8]);
    const speed = legs === 0 ? rng.int(2, 30) : rng.int(5, 110);
    animals.push({ kind: 'animal', name, legs, habitat: rng.pick(habitats), diet: rng.pick(diets), speed });
  }
  const byName = new Map<string, Entity>();
  for (const e of [...countries, ...elements, ...animals]) byName.set(e.name.toLowerCase(), e);
  const capitals = new Set(countries.map((c) => c.capital.toLowerCase()));
  return { countries, elements, animals, byName, capitals };
}

let cached: KnowledgeBase | undefined;

/**
 * The built-in knowledge base (230 entities), built once and cached.
 *
 * @example
 * const kb = knowledgeBase();
 * const c = kb.countries[0]!;
 * `The capital of ${c.name} is ${c.capital}.`
 */
export function knowledgeBase(): KnowledgeBase {
  cached ??= buildKnowledgeBase();
  return cached;
}

/** Everyday words for the word tasks (spelling backwards, counting letters). */
export const words: readonly string[] = (
  'apple garden window river pencil market orange yellow silver planet rocket butter candle ' +
  'forest guitar hammer island jacket kitten ladder mirror needle pepper rabbit saddle ticket ' +
  'velvet wallet basket bottle camera dragon engine falcon helmet insect jungle kettle lemon ' +
  'magnet napkin office parrot quartz ribbon sailor tomato unicorn violin walnut zipper anchor ' +
  'banana cactus donkey feather ginger harbor igloo jigsaw kayak lantern meadow noodle oyster ' +
  'puzzle rocket spider turtle umbrella vessel wizard breeze cherry doctor estate fossil glider ' +
  'hollow monkey pillow summer winter castle bridge cookie dinner letter mitten puppet ' +
  'balloon compass blanket cabbage diamond elephant giraffe holiday journey library mustard ' +
  'octopus pumpkin raccoon scissors teacher village whistle address banner coffee marble'
)
  .split(' ')
  // Unique, and no palindromes: reversing one would make any restatement look like the answer.
  .filter((w, i, all) => all.indexOf(w) === i && [...w].reverse().join('') !== w);
