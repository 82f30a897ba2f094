// A synthetic shop: a catalogue with categories, prices and Zipf popularity, and users with a
// latent purchase propensity, favourite categories, device and country. The purchase model is
// a known logistic function of these, so learned models have a ground truth to approach.
import type { Random } from '../common/random.js';
import { WeightedPicker, sigmoid } from '../common/random.js';

export const CATEGORIES = [
  'books',
  'music',
  'games',
  'toys',
  'garden',
  'kitchen',
  'tools',
  'sports',
  'outdoor',
  'beauty',
  'health',
  'baby',
  'pets',
  'fashion',
  'shoes',
  'jewelry',
  'electronics',
  'computers',
  'phones',
  'cameras',
] as const;
export const DEVICES = ['desktop', 'mobile', 'tablet'] as const;
export const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'ES', 'IT', 'NL', 'SE', 'PL', 'BR', 'IN', 'JP'] as const;
export const REFERRERS = ['direct', 'search', 'social', 'email', 'ads'] as const;
export const PAGE_TYPES = ['product', 'search', 'recommendation', 'cart'] as const;

const DEVICE_EFFECT: Record<string, number> = { desktop: 0.25, mobile: -0.2, tablet: 0 };
const REFERRER_EFFECT: Record<string, number> = {
  direct: 0.3,
  search: 0.15,
  social: -0.35,
  email: 0.45,
  ads: -0.1,
};
const PAGE_EFFECT: Record<string, number> = { product: 0, search: -0.2, recommendation: 0.2, cart: 1.1 };

export interface Item {
  id: string;
  category: string;
  price: number;
  /** Item-level purchase log-odds offset. */
  appeal: number;
}

export interface User {
  id: string;
  country: string;
  device: string;
  /** Latent purchase log-odds offset. */
  propensity: number;
  favourites: string[];
}

export interface ShopConfig {
  users: number;
  items: number;
  /** Base log-odds of a click ending in a purchase of that item. */
  baseLogOdds: number;
}

export const DEFAULT_SHOP: ShopConfig = { users: 5000, items: 2000, baseLogOdds: -3.4 };

export interface PurchaseContext {
  user: User;
  item: Item;
  referrer: string;
  pageType: string;
  /** 0-based position of the click within its session. */
  depth: number;
  /** Extra log-odds by category in force at the click's time (drift). */
  categoryShift: number;
  /** Extra log-odds from what the shop showed this user (the model serving them: an experiment's effect). */
  treatment?: number;
}

export class Shop {
  readonly items: Item[];
  readonly users: User[];
  readonly categoryEffect: Record<string, number>;
  private readonly itemPicker: WeightedPicker<Item>;
  private readonly itemsByCategory: Map<string, WeightedPicker<Item>>;
  private readonly userPicker: WeightedPicker<User>;

  constructor(
    readonly config: ShopConfig,
    random: Random,
  ) {
    const r = random.fork(1);
    this.categoryEffect = Object.fromEntries(CATEGORIES.map((c) => [c, r.normal(0, 0.5)]));
    const categoryPrice = Object.fromEntries(CATEGORIES.map((c) => [c, Math.exp(r.normal(3.4, 0.8))]));
    this.items = Array.from({ length: config.items }, (_, i) => {
      const category = r.pick(CATEGORIES);
      const price = Math.round(r.logNormal(categoryPrice[category] ?? 30, 0.5) * 100) / 100;
      return { id: `item-${String(i).padStart(5, '0')}`, category, price, appeal: r.normal(0, 0.6) };
    });
    // Zipf popularity: a few items get most of the clicks.
    const popularity = this.items.map((_, i) => 1 / Math.pow(i + 1, 0.9));
    this.itemPicker = new WeightedPicker(this.items, popularity);
    this.itemsByCategory = new Map(
      CATEGORIES.map((c) => {
        const inCategory = this.items
          .map((item, i) => ({ item, w: popularity[i] as number }))
          .filter((x) => x.item.category === c);
        return [
          c,
          new WeightedPicker(
            inCategory.map((x) => x.item),
            inCategory.map((x) => x.w),
          ),
        ];
      }),
    );
    this.users = Array.from({ length: config.users }, (_, i) => ({
      id: `user-${String(i).padStart(6, '0')}`,
      country: r.pick(COUNTRIES),
      device: r.chance(0.55) ? 'mobile' : r.chance(0.8) ? 'desktop' : 'tablet',
      propensity: r.normal(0, 0.9),
      favourites: [r.pick(CATEGORIES), r.pick(CATEGORIES)],
    }));
    // Some users visit far more often than others.
    this.userPicker = new WeightedPicker(
      this.users,
      this.users.map(() => r.logNormal(1, 0.8)),
    );
  }

  pickUser(random: Random): User {
    return this.userPicker.pick(random);
  }

  /** Mostly the user's favourite categories, otherwise the whole catalogue by popularity. */
  pickItem(random: Random, user: User): Item {
    if (random.chance(0.6)) {
      const picker = this.itemsByCategory.get(random.pick(user.favourites));
      if (picker) return picker.pick(random);
    }
    return this.itemPicker.pick(random);
  }

  /** An item of `category`, by popularity. */
  pickItemOf(random: Random, category: string): Item {
    const picker = this.itemsByCategory.get(category);
    return picker ? picker.pick(random) : this.itemPicker.pick(random);
  }

  purchaseProbability(ctx: PurchaseContext): number {
    const favourite = ctx.user.favourites.includes(ctx.item.category) ? 0.5 : 0;
    const logOdds =
      this.config.baseLogOdds +
      ctx.user.propensity +
      ctx.item.appeal +
      (this.categoryEffect[ctx.item.category] ?? 0) +
      ctx.categoryShift +
      (ctx.treatment ?? 0) +
      favourite +
      (DEVICE_EFFECT[ctx.user.device] ?? 0) +
      (REFERRER_EFFECT[ctx.referrer] ?? 0) +
      (PAGE_EFFECT[ctx.pageType] ?? 0) +
      0.12 * Math.min(ctx.depth, 10) -
      0.3 * Math.log(ctx.item.price / 30);
    return sigmoid(logOdds);
  }
}
