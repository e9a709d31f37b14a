import { type Entity, knowledgeBase } from './knowledge.ts';
import type { Answer } from './requests.ts';

/**
 * Fact questions about the knowledge base: which attributes can be asked about, how each is asked
 * and stated, and how the entity and attribute of a question are found again in its text.
 */

/** One checkable attribute of one kind of entity. */
export interface FactAttribute {
  kind: Entity['kind'];
  cue: RegExp;
  questions: string[];
  frame: string;
  answer(e: Entity): Answer;
}

/** The numeric attribute `key` of a knowledge-base entity (population, atomic number, speed …). */
export function num(e: Entity, key: string): number {
  return (e as unknown as Record<string, number>)[key]!;
}
function str(e: Entity, key: string): string {
  return (e as unknown as Record<string, string>)[key]!;
}

export const factAttributes: FactAttribute[] = [
  {
    kind: 'country',
    cue: /capital/,
    questions: [
      'What is the capital of {e}?',
      'Which city is the capital of {e}?',
      "What's {e}'s capital city?",
    ],
    frame: 'The capital of {e} is {}.',
    answer: (e) => ({ type: 'text', value: str(e, 'capital'), domain: 'capital' }),
  },
  {
    kind: 'country',
    cue: /population|people|inhabitants/,
    questions: ['What is the population of {e}, in millions?', 'How many million people live in {e}?'],
    frame: '{e} has a population of {} million.',
    answer: (e) => ({ type: 'number', value: num(e, 'population') }),
  },
  {
    kind: 'country',
    cue: /continent/,
    questions: ['On which continent is {e}?', 'Which continent is {e} part of?'],
    frame: '{e} is in {}.',
    answer: (e) => ({ type: 'text', value: str(e, 'continent'), domain: 'continent' }),
  },
  {
    kind: 'element',
    cue: /symbol/,
    questions: ['What is the chemical symbol of {e}?', "What's the symbol for {e}?"],
    frame: 'The chemical symbol of {e} is {}.',
    answer: (e) => ({ type: 'text', value: str(e, 'symbol'), domain: 'symbol' }),
  },
  {
    kind: 'element',
    cue: /atomic number/,
    questions: ['What is the atomic number of {e}?', 'Which atomic number does {e} have?'],
    frame: 'The atomic number of {e} is {}.',
    answer: (e) => ({ type: 'number', value: num(e, 'atomicNumber') }),
  },
  {
    kind: 'element',
    cue: /solid|liquid|gas|room temperature/,
    questions: [
      'Is {e} a solid, liquid or gas at room temperature?',
      'At room temperature, is {e} a solid, a liquid or a gas?',
    ],
    frame: 'At room temperature {e} is a {}.',
    answer: (e) => ({ type: 'choice', value: str(e, 'state'), options: ['solid', 'liquid', 'gas'] }),
  },
  {
    kind: 'animal',
    cue: /legs/,
    questions: ['How many legs does a {e} have?', 'How many legs has the {e} got?'],
    frame: 'A {e} has {} legs.',
    answer: (e) => ({ type: 'number', value: num(e, 'legs') }),
  },
  {
    kind: 'animal',
    cue: /habitat|where does|live/,
    questions: ['Where does the {e} live?', 'What is the natural habitat of the {e}?'],
    frame: 'The {e} lives in the {}.',
    answer: (e) => ({ type: 'text', value: str(e, 'habitat'), domain: 'habitat' }),
  },
  {
    kind: 'animal',
    cue: /herbivore|carnivore|omnivore|diet|eat/,
    questions: [
      'Is the {e} a herbivore, carnivore or omnivore?',
      'Is a {e} a carnivore, a herbivore or an omnivore?',
    ],
    frame: 'The {e} is a {}.',
    answer: (e) => ({
      type: 'choice',
      value: str(e, 'diet'),
      options: ['herbivore', 'carnivore', 'omnivore'],
    }),
  },
  {
    kind: 'animal',
    cue: /fast|speed|km\/h/,
    questions: ['How fast can a {e} run, in km/h?', 'What is the top speed of the {e} in km/h?'],
    frame: 'A {e} can reach {} km/h.',
    answer: (e) => ({ type: 'number', value: num(e, 'speed') }),
  },
];

/**
 * A question or answer template with its entity: every `{e}` replaced by the name.
 *
 * @example fill('What is the capital of {e}?', 'France') // 'What is the capital of France?'
 */
export const fill = (template: string, e: string): string => template.replaceAll('{e}', e);

/** The knowledge base's entities of one kind (countries, elements or animals). */
export function entitiesOf(kind: Entity['kind']): Entity[] {
  const kb = knowledgeBase();
  return kind === 'country' ? kb.countries : kind === 'element' ? kb.elements : kb.animals;
}

/** Entities named in a text, in order of appearance (names are single words). */
export function entitiesIn(text: string): Entity[] {
  const kb = knowledgeBase();
  const out: Entity[] = [];
  for (const token of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    const e = kb.byName.get(token);
    if (e) out.push(e);
  }
  return out;
}

/** The fact a question asks for: its first entity and the attribute of that entity's kind it cues. */
export function findFact(text: string): { attribute: FactAttribute; entity: Entity } | undefined {
  const entity = entitiesIn(text)[0];
  if (!entity) return undefined;
  const lower = text.toLowerCase();
  const attribute = factAttributes.find((f) => f.kind === entity.kind && f.cue.test(lower));
  return attribute ? { attribute, entity } : undefined;
}
