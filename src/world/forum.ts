import type { ComparisonRecord } from '../data/types.ts';
import type { Rng } from './rng.ts';

/**
 * The "forum": questions with several answers and noisy vote counts, the world's stand-in for the
 * StackExchange/Reddit data of preference model pretraining (PMP, Bai et al. 2022 §3.3 and Askell et
 * al. 2021). Its topics (hobbies and household problems) are disjoint from the assistant's request
 * families, so PMP teaches "what a good answer looks like" without leaking the world's labels.
 */

interface ForumProblem {
  question: string[];
  /** Relevant, correct tips; a great answer combines two. */
  tips: string[];
}

const topics: Record<string, ForumProblem[]> = {
  baking: [
    {
      question: ['My bread never rises properly.', 'Why is my bread so dense?'],
      tips: [
        'check that your yeast is fresh by proofing it in warm water',
        'let the dough rise somewhere warm for longer',
        'knead until the dough is smooth and springs back',
      ],
    },
    {
      question: ['My cookies spread out flat in the oven.', 'How do I stop cookies from spreading?'],
      tips: [
        'chill the dough for an hour before baking',
        'use less butter or swap some for shortening',
        'bake on a cool tray, not a hot one',
      ],
    },
    {
      question: ['My cake sinks in the middle.', 'Why does my cake collapse after baking?'],
      tips: [
        'do not open the oven door in the first twenty minutes',
        'check the oven temperature with a thermometer',
        'measure the baking powder exactly',
      ],
    },
  ],
  gardening: [
    {
      question: ['My tomato leaves are turning yellow.', 'Why are the leaves on my tomatoes yellow?'],
      tips: [
        'water at the base in the morning, not on the leaves',
        'add a balanced fertiliser every two weeks',
        'remove the lowest leaves to improve air flow',
      ],
    },
    {
      question: ['My seedlings are tall and floppy.', 'How do I stop my seedlings getting leggy?'],
      tips: [
        'give them more light, ideally a grow lamp close above them',
        'keep them a little cooler',
        'brush your hand over them daily so the stems strengthen',
      ],
    },
    {
      question: ['Slugs are eating my lettuce.', 'How can I protect lettuce from slugs?'],
      tips: [
        'put copper tape around the beds',
        'water in the morning so the soil is dry by night',
        'set beer traps near the plants',
      ],
    },
  ],
  cycling: [
    {
      question: ['My bike chain keeps slipping.', 'Why does my chain skip when I pedal hard?'],
      tips: [
        'check the chain for wear with a chain checker',
        'adjust the rear derailleur cable tension',
        'replace the cassette if the teeth look like shark fins',
      ],
    },
    {
      question: ['My brakes squeal loudly.', 'How do I stop my bike brakes squeaking?'],
      tips: [
        'clean the rims or rotors with rubbing alcohol',
        'toe in the brake pads slightly',
        'replace glazed pads',
      ],
    },
    {
      question: ['I keep getting flat tyres.', 'Why do I get so many punctures?'],
      tips: [
        'keep the tyres at the pressure printed on the sidewall',
        'check inside the tyre for a thorn before fitting a new tube',
        'use puncture-resistant tyres',
      ],
    },
  ],
  houseplants: [
    {
      question: ['My fern has crispy brown edges.', 'Why is my fern drying out?'],
      tips: [
        'raise the humidity with a pebble tray',
        'keep it away from radiators',
        'water whenever the top of the soil feels dry',
      ],
    },
    {
      question: ['My succulent is going soft and mushy.', 'Why is my succulent rotting?'],
      tips: [
        'water far less, only when the soil is completely dry',
        'repot it in gritty cactus soil',
        'use a pot with a drainage hole',
      ],
    },
    {
      question: ['Tiny flies are coming out of my plant pots.', 'How do I get rid of fungus gnats?'],
      tips: ['let the soil dry out between waterings', 'use yellow sticky traps', 'water from the bottom'],
    },
  ],
  coffee: [
    {
      question: ['My espresso tastes sour.', 'Why is my espresso so acidic?'],
      tips: [
        'grind finer so the shot runs slower',
        'use water just off the boil',
        'use a little more coffee in the basket',
      ],
    },
    {
      question: ['My French press coffee is muddy.', 'How do I get less sludge from a French press?'],
      tips: [
        'use a coarser grind',
        'let it steep without stirring at the end',
        'pour slowly and leave the last bit in the pot',
      ],
    },
  ],
  aquariums: [
    {
      question: ['My aquarium water keeps turning green.', 'How do I get rid of green water in my tank?'],
      tips: [
        'cut the light to eight hours a day',
        'do weekly partial water changes',
        'move the tank out of direct sunlight',
      ],
    },
    {
      question: ['My new fish keep dying.', 'Why do fish die in a new tank?'],
      tips: [
        'cycle the tank for a few weeks before adding fish',
        'test the ammonia and nitrite levels',
        'add only a few fish at a time',
      ],
    },
  ],
  'home repair': [
    {
      question: ['My door squeaks every time it opens.', 'How do I fix a squeaky door?'],
      tips: [
        'put a drop of oil on the hinge pins',
        'tighten the hinge screws',
        'rub the pins with a bar of soap',
      ],
    },
    {
      question: ['The grout in my shower is mouldy.', 'How do I clean mouldy grout?'],
      tips: [
        'scrub it with baking soda paste and an old toothbrush',
        'run the extractor fan after every shower',
        'seal the grout once it is dry',
      ],
    },
  ],
};

/**
 * Threads where the asker wants a risky shortcut: moderated forums reward the answer that says no, says
 * why and offers a safe way (and bury the one that explains the shortcut), as real StackExchange and
 * Reddit threads do. Without them the forum teaches only "an answer beats no answer", and a PM pretrained
 * on it learns to prefer compliance over declining on harmful requests (measured: PMP lowered the
 * harmless test accuracy at 50 comparisons from 79.6% to 45.9%). Household and workshop hazards, disjoint
 * from the assistant's harmful families and look-alikes.
 */
interface SafetyProblem {
  question: string[];
  /** Why the shortcut is a bad idea. */
  risk: string;
  /** Safe ways to get what the asker wants. */
  safe: string[];
  /** Answers that explain the risky shortcut (voted down). */
  unsafe: string[];
}

const safetyProblems: SafetyProblem[] = [
  {
    question: [
      'Can I mix bleach and ammonia to make a stronger cleaner?',
      'Is it fine to combine bleach with other cleaners for tough stains?',
    ],
    risk: 'together they give off a toxic gas',
    safe: ['use one cleaner at a time and rinse in between', 'try a baking soda paste on tough stains'],
    unsafe: [
      'Yes, pour both into one bucket, it cuts through anything.',
      'Mix them in a spray bottle and close the door so it works faster.',
    ],
  },
  {
    question: [
      'How do I take the guard off my angle grinder so it fits in tight spots?',
      'Can I run my grinder without the guard?',
    ],
    risk: 'the guard is what stops a shattered disc hitting you',
    safe: [
      'use a smaller disc or a multitool for tight spots',
      'clamp the piece so you can reach it with the guard on',
    ],
    unsafe: [
      'Two screws and it comes off, just keep your face back.',
      'Take the guard off and hold the grinder with one hand.',
    ],
  },
  {
    question: [
      'My smoke alarm goes off every time I cook. How do I disable it for good?',
      'How can I stop my smoke alarm from ever going off?',
    ],
    risk: 'a disabled alarm will not wake you in a real fire',
    safe: ['move the alarm a few metres away from the cooker', 'fit a heat alarm in the kitchen instead'],
    unsafe: ['Take the battery out and forget about it.', 'Tape a plastic bag over it, problem solved.'],
  },
  {
    question: [
      'Can I use my charcoal barbecue in the garage when it rains?',
      'How do I barbecue indoors on a rainy day?',
    ],
    risk: 'charcoal gives off carbon monoxide, which builds up indoors without any smell',
    safe: ['cook under a gazebo outside', 'use the oven grill for the same char'],
    unsafe: [
      'Light it in the garage with the door half open.',
      'Crack a window and set it up in the kitchen.',
    ],
  },
  {
    question: [
      'How do I change a light switch without turning the power off?',
      'Is it safe to rewire a socket while it is live?',
    ],
    risk: 'live wires can give you a serious shock',
    safe: [
      'switch off the circuit at the fuse box and check it with a voltage tester',
      'call an electrician if you are unsure',
    ],
    unsafe: [
      'Wear rubber gloves and be quick about it.',
      'Just do not touch two wires at once and you are fine.',
    ],
  },
  {
    question: [
      'How do I thaw a frozen pipe with a blowtorch?',
      'What is the fastest way to unfreeze pipes with a flame?',
    ],
    risk: 'an open flame can crack the pipe or set the wall behind it alight',
    safe: ['warm the pipe slowly with a hairdryer', 'wrap the pipe in towels soaked in hot water'],
    unsafe: [
      'Run the blowtorch along the pipe until it hisses.',
      'Heat the frozen part with the torch until the water flows.',
    ],
  },
];

/** Answer kinds of a safety thread: a caution with a safe way (great), a safe way alone (good), the shortcut. */
const safetyStyleWeights: Record<AnswerStyle, number> = {
  caution: 0.25,
  safe: 0.2,
  unsafe: 0.25,
  vague: 0.1,
  rude: 0.1,
  joke: 0.1,
  great: 0,
  good: 0,
  'off-topic': 0,
  rambling: 0,
  overcautious: 0,
};

const vagueAnswers = [
  'Just keep trying, it takes practice.',
  'Everyone has this problem at first.',
  'It depends on a lot of things really.',
];
const rudeAnswers = [
  'Just search for it, this gets asked every week.',
  'Why would you even try that?',
  'Read the manual.',
];
const jokeAnswers = [
  'Have you tried turning it off and on again?',
  'Sounds like it is haunted.',
  'Give up and buy one instead.',
];

/** The kind of answer a forum thread holds; its quality sets the votes. */
export type AnswerStyle =
  | 'great'
  | 'good'
  | 'vague'
  | 'off-topic'
  | 'rude'
  | 'joke'
  | 'caution'
  | 'safe'
  | 'unsafe'
  | 'rambling'
  | 'overcautious';

/** Latent quality of each style: what voters reward (jokes do surprisingly well, as on real forums). */
const styleQuality: Record<AnswerStyle, number> = {
  great: 2,
  good: 1.3,
  vague: 0.3,
  'off-topic': 0,
  rude: -0.8,
  joke: 0.6,
  caution: 2,
  safe: 1.3,
  unsafe: -1,
  rambling: 0.7,
  overcautious: -0.2,
};

const answerStyleWeights: Record<AnswerStyle, number> = {
  great: 0.2,
  good: 0.25,
  vague: 0.15,
  'off-topic': 0.15,
  rude: 0.1,
  joke: 0.15,
  caution: 0,
  safe: 0,
  unsafe: 0,
  rambling: 0,
  overcautious: 0,
};

/**
 * Two answer kinds only the PMP forum's threads hold (ForumMix; the pretraining corpus's threads keep the
 * mix above, so the LM is the same with or without them). Without them the forum's votes track length —
 * its best answers are its longest — and every non-answer is short, so PMP taught "longer beats shorter"
 * and "any answer beats declining" whatever the question, the opposite of the world's crowd on padded
 * answers and on harmful requests (measured on seed 1: PMP alone ranked 54.6% of the held-out comparisons
 * as the gold judge does, and a PM finetuned from it on 250 was 5.9 points less accurate than one finetuned
 * from the LM).
 * Forums tend to bury both: a padded answer gets fewer votes on average than the same tip said plainly
 * (rambling), and "get a professional in" to an everyday question is voted down as a non-answer
 * (overcautious), while declining with a reason is voted up in the safety threads: whether declining is
 * right depends on what was asked. Their wording is the forum's own, not the assistant's fillers and
 * refusals.
 */
const ramblingOpeners = [
  'Funny, I was only talking about this with my neighbour last weekend.',
  'I have been on this forum for years and this comes up all the time.',
  'Long story, so bear with me.',
  'My uncle had a theory about this, though he was wrong about most things.',
  'Not sure if this will help, but here goes.',
  'I went down a real rabbit hole reading about this once.',
];
const ramblingClosers = [
  'Anyway, that is my two cents, take it or leave it.',
  'Hope that makes sense, it is late here.',
  'Sorry, that turned into an essay.',
];
const overcautiousAnswers = [
  'I would not try that yourself, it could go wrong. Get a professional in.',
  'Honestly, I would not risk it. Best to ask an expert.',
  'Sorry, I would rather not say, in case it goes wrong.',
];

/**
 * The share of safety threads, and the weights of the PMP-only answer kinds added to answerStyleWeights
 * (which sum to 1, so { rambling: 0.3, overcautious: 0.1 } makes ~21% and ~7% of an everyday thread's
 * answers); 0 or absent: none of them.
 */
export interface ForumMix {
  safetyShare?: number;
  rambling?: number;
  overcautious?: number;
}

export interface ForumAnswer {
  text: string;
  style: AnswerStyle;
  votes: number;
  accepted: boolean;
}

export interface ForumThread {
  topic: string;
  question: string;
  answers: ForumAnswer[];
}

const upper = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function writeAnswer(rng: Rng, style: AnswerStyle, problem: ForumProblem, others: ForumProblem[]): string {
  const [first, second] = rng.shuffle(problem.tips);
  switch (style) {
    case 'great':
      return `${upper(first!)}. Also ${second!}. That fixed it for me.`;
    case 'good':
      return `${upper(first!)}.`;
    case 'off-topic':
      return `${upper(rng.pick(rng.pick(others).tips))}.`;
    case 'rambling': {
      const openers = Array.from({ length: rng.int(2, 4) }, () => rng.pick(ramblingOpeners));
      return [...openers, `${upper(first!)}.`, rng.pick(ramblingClosers)].join(' ');
    }
    default:
      return plainAnswer(rng, style);
  }
}

/** The answers any thread may hold, whatever its problem: vague, rude, a joke, an overcautious non-answer. */
function plainAnswer(rng: Rng, style: AnswerStyle): string {
  if (style === 'vague') return rng.pick(vagueAnswers);
  if (style === 'rude') return rng.pick(rudeAnswers);
  if (style === 'joke') return rng.pick(jokeAnswers);
  if (style === 'overcautious') return rng.pick(overcautiousAnswers);
  throw new Error(`forum: no ${style} answer fits this thread`);
}

function writeSafetyAnswer(rng: Rng, style: AnswerStyle, problem: SafetyProblem): string {
  const [first, second] = rng.shuffle(problem.safe);
  switch (style) {
    case 'caution':
      return rng.chance(0.5)
        ? `Please don't, ${problem.risk}. ${upper(first!)} instead.`
        : `I wouldn't do that: ${problem.risk}. If you'd like the same result, ${first!}, or ${second!}.`;
    case 'safe':
      return `${upper(first!)}.`;
    case 'unsafe':
      return rng.pick(problem.unsafe);
    default:
      return plainAnswer(rng, style);
  }
}

/**
 * One forum thread: a question, 3–6 answers of mixed quality, votes = popularity · exp(quality + noise).
 * With probability `mix.safetyShare` the thread is a safety one (a risky shortcut asked for; see
 * safetyProblems); at 0 (the pretraining corpus's threads) no random draw is spent on that choice.
 *
 * @example forumThread(new Rng(1)).answers.map((a) => a.votes)
 */
export function forumThread(rng: Rng, mix: ForumMix = {}): ForumThread {
  if (typeof mix !== 'object' || mix === null)
    throw new TypeError(
      `forumThread: mix must be an object such as { safetyShare: 0.2 }, got ${String(mix)}`,
    );
  const { safetyShare = 0, rambling = 0, overcautious = 0 } = mix;
  // Zero-weight kinds never change a draw, so the pretraining corpus's threads (mix {}) stay as they were.
  const weights = { ...answerStyleWeights, rambling, overcautious };
  const safety = safetyShare > 0 && rng.chance(safetyShare) ? rng.pick(safetyProblems) : undefined;
  const topic = safety ? 'safety' : rng.pick(Object.keys(topics));
  const problems = safety ? [] : topics[topic]!;
  const problem = safety ? undefined : rng.pick(problems);
  const others = Object.values(topics)
    .flat()
    .filter((p) => p !== problem);
  const context = safety
    ? rng.pick(['', 'Asking for a quick fix. ', 'Beginner here. '])
    : rng.pick(['', 'I have tried everything. ', 'Beginner here. ', 'This started last week. ']);
  const question = safety
    ? `${rng.pick(safety.question)} ${context}`.trim()
    : `${rng.pick(problem!.question)} ${context}Any advice?`.replace('  ', ' ');
  const popularity = Math.exp(rng.normal(1, 0.8));
  const count = rng.int(3, 6);
  const answers: ForumAnswer[] = [];
  for (let i = 0; i < count; i++) {
    // Distinct texts: two identical answers with different votes would make contradictory pairs.
    let style: AnswerStyle;
    let text: string;
    let tries = 0;
    do {
      style = rng.weighted(safety ? safetyStyleWeights : weights);
      text = safety ? writeSafetyAnswer(rng, style, safety) : writeAnswer(rng, style, problem!, others);
    } while (answers.some((a) => a.text === text) && ++tries < 20);
    // Voting is noisy: late answers get fewer views, and taste varies.
    const views = 1 / (1 + 0.3 * i);
    const votes =
      Math.round(popularity * views * Math.exp(styleQuality[style] + rng.normal(0, 0.7))) - rng.int(0, 1);
    answers.push({ text, style, votes, accepted: false });
  }
  // The asker accepts the best-voted helpful answer about half the time.
  const best = answers.reduce((b, a) => (a.votes > b.votes ? a : b), answers[0]!);
  const helpful: AnswerStyle[] = ['great', 'good', 'caution', 'safe'];
  if (rng.chance(0.5) && helpful.includes(best.style)) best.accepted = true;
  return { topic, question, answers };
}

/** PMP score of an answer, as for StackExchange in the paper: log2(1 + upvotes), +1 if accepted, −1 if net negative. */
export function forumScore(answer: ForumAnswer): number {
  const base = answer.votes < 0 ? -1 : Math.round(Math.log2(1 + answer.votes));
  return base + (answer.accepted ? 1 : 0);
}

/**
 * Binarises a thread into ranked pairs: every two answers with different scores, the higher-scored
 * one as chosen, capped at `maxPairs` per thread so busy threads do not dominate.
 *
 * @example forumPairs(new Rng(2), forumThread(new Rng(1))).length // 0–6
 */
export function forumPairs(rng: Rng, thread: ForumThread, maxPairs = 6): ComparisonRecord[] {
  const prompt = `\n\nHuman: ${thread.question}\n\nAssistant:`;
  const pairs: ComparisonRecord[] = [];
  for (let i = 0; i < thread.answers.length; i++) {
    for (let j = i + 1; j < thread.answers.length; j++) {
      const a = thread.answers[i]!;
      const b = thread.answers[j]!;
      const [sa, sb] = [forumScore(a), forumScore(b)];
      if (sa === sb || a.text === b.text) continue;
      const [hi, lo] = sa > sb ? [a, b] : [b, a];
      pairs.push({
        chosen: `${prompt} ${hi.text}`,
        rejected: `${prompt} ${lo.text}`,
        prompt,
        source: `forum:${thread.topic}`,
      });
    }
  }
  return rng.shuffle(pairs).slice(0, maxPairs);
}

/**
 * Whether a pair's chosen answer has the higher latent quality: the gold check on vote noise.
 * Undefined when both answers are of equal quality (or not from this thread).
 */
export function forumPairAgreesWithQuality(thread: ForumThread, pair: ComparisonRecord): boolean | undefined {
  const find = (t: string) => thread.answers.find((a) => t.endsWith(` ${a.text}`));
  const c = find(pair.chosen);
  const r = find(pair.rejected);
  if (!c || !r || styleQuality[c.style] === styleQuality[r.style]) return undefined;
  return styleQuality[c.style] > styleQuality[r.style];
}
