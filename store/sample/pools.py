"""Fixed pools the sample generator draws from: countries, cities, domains, products, campaigns.

Kept apart from the generator so the numbers that make the sample brand
believable (market shares, city weights, price ranges, the marketing
calendar) can be read and tuned in one place. Person names come from Faker,
drawn once per country into small pools (``name_pools``); everything per
profile or per event is then sampled from these pools with numpy.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

BRAND = "Cobble & Pine"


@dataclass(frozen=True)
class Country:
    """A market: ISO code, share of customers, Faker locale for names, cities by weight."""

    code: str
    weight: float
    locale: str
    local_domains: tuple[str, ...]
    cities: tuple[tuple[str, float], ...]


COUNTRIES: tuple[Country, ...] = (
    Country("US", 38.0, "en_US", ("comcast.net", "aol.com"), (
        ("New York", 18.0), ("Los Angeles", 10.0), ("Chicago", 6.5), ("Houston", 5.0),
        ("Phoenix", 4.0), ("Philadelphia", 3.8), ("San Antonio", 3.0), ("San Diego", 3.0),
        ("Dallas", 3.2), ("Austin", 2.8), ("Seattle", 3.4), ("Denver", 2.9), ("Boston", 3.3),
        ("Portland", 2.4), ("Atlanta", 2.9), ("Miami", 2.7), ("Minneapolis", 2.0),
        ("Nashville", 1.8), ("Salt Lake City", 1.3), ("San Francisco", 3.1),
    )),
    Country("GB", 12.0, "en_GB", ("btinternet.com", "sky.com"), (
        ("London", 40.0), ("Manchester", 9.0), ("Birmingham", 9.0), ("Leeds", 6.0),
        ("Glasgow", 6.0), ("Bristol", 5.0), ("Edinburgh", 5.0), ("Liverpool", 5.0),
        ("Sheffield", 4.0), ("Cardiff", 3.5), ("Newcastle upon Tyne", 3.5), ("Nottingham", 3.0),
    )),
    Country("DE", 10.0, "de_DE", ("gmx.de", "web.de", "t-online.de"), (
        ("Berlin", 24.0), ("Hamburg", 13.0), ("München", 11.0), ("Köln", 8.0),
        ("Frankfurt am Main", 6.0), ("Stuttgart", 5.0), ("Düsseldorf", 5.0), ("Leipzig", 4.0),
        ("Dortmund", 4.0), ("Bremen", 3.5), ("Dresden", 3.5), ("Hannover", 3.5),
    )),
    Country("FR", 8.0, "fr_FR", ("orange.fr", "free.fr", "laposte.net"), (
        ("Paris", 35.0), ("Marseille", 9.0), ("Lyon", 9.0), ("Toulouse", 7.0), ("Nice", 5.0),
        ("Nantes", 5.0), ("Strasbourg", 4.5), ("Montpellier", 4.5), ("Bordeaux", 5.0),
        ("Lille", 4.5), ("Rennes", 3.5),
    )),
    Country("CA", 7.0, "en_CA", ("rogers.com", "shaw.ca"), (
        ("Toronto", 30.0), ("Montréal", 20.0), ("Vancouver", 14.0), ("Calgary", 9.0),
        ("Edmonton", 8.0), ("Ottawa", 8.0), ("Winnipeg", 5.0), ("Halifax", 3.0),
        ("Québec City", 3.0),
    )),
    Country("AU", 5.0, "en_AU", ("bigpond.com", "optusnet.com.au"), (
        ("Sydney", 32.0), ("Melbourne", 30.0), ("Brisbane", 15.0), ("Perth", 12.0),
        ("Adelaide", 8.0), ("Canberra", 3.0), ("Hobart", 2.0),
    )),
    Country("ES", 5.0, "es_ES", ("telefonica.net",), (
        ("Madrid", 32.0), ("Barcelona", 25.0), ("Valencia", 10.0), ("Sevilla", 9.0),
        ("Zaragoza", 6.0), ("Málaga", 6.0), ("Bilbao", 5.0), ("Palma", 4.0),
    )),
    Country("IT", 5.0, "it_IT", ("libero.it", "virgilio.it", "tiscali.it"), (
        ("Roma", 28.0), ("Milano", 22.0), ("Napoli", 12.0), ("Torino", 10.0),
        ("Palermo", 7.0), ("Bologna", 7.0), ("Firenze", 7.0), ("Genova", 7.0),
    )),
    Country("NL", 4.0, "nl_NL", ("ziggo.nl", "kpnmail.nl"), (
        ("Amsterdam", 32.0), ("Rotterdam", 22.0), ("Den Haag", 18.0), ("Utrecht", 14.0),
        ("Eindhoven", 8.0), ("Groningen", 6.0),
    )),
    Country("SE", 2.5, "sv_SE", ("telia.com", "bredband.net"), (
        ("Stockholm", 45.0), ("Göteborg", 25.0), ("Malmö", 16.0), ("Uppsala", 8.0),
        ("Västerås", 6.0),
    )),
    Country("IE", 2.0, "en_IE", ("eircom.net",), (
        ("Dublin", 55.0), ("Cork", 18.0), ("Limerick", 9.0), ("Galway", 9.0),
        ("Waterford", 9.0),
    )),
    Country("PL", 1.5, "pl_PL", ("wp.pl", "onet.pl", "o2.pl"), (
        ("Warszawa", 35.0), ("Kraków", 20.0), ("Wrocław", 15.0), ("Gdańsk", 12.0),
        ("Poznań", 12.0), ("Łódź", 6.0),
    )),
)

# Webmail share worldwide; a profile whose country has local providers uses one of
# them with LOCAL_DOMAIN_SHARE, and a work address with COMPANY_DOMAIN_SHARE.
WEBMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("gmail.com", 46.0), ("yahoo.com", 14.0), ("outlook.com", 10.0), ("hotmail.com", 10.0),
    ("icloud.com", 9.0), ("proton.me", 1.5), ("aol.com", 1.5),
)
COMPANY_DOMAINS: tuple[str, ...] = (
    "northwind.com", "contoso.com", "fabrikam.com", "globex.com", "initech.com",
    "umbrella-corp.com", "acme.com", "hooli.com",
)
LOCAL_DOMAIN_SHARE = 0.10
COMPANY_DOMAIN_SHARE = 0.05

GENDERS: tuple[tuple[str | None, float], ...] = (
    ("female", 51.0), ("male", 44.5), ("other", 1.8), (None, 2.7),
)
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
# Cumulative share of members below each tier boundary, by lifetime-value rank.
LOYALTY_TIER_CUTS = (0.45, 0.80, 0.95)
LOYALTY_MEMBER_SHARE = 0.78
CHANNELS: tuple[tuple[str, float], ...] = (
    ("email", 46.0), ("push", 21.0), ("sms", 13.0), ("none", 20.0),
)

# Share of sessions by hour of day (UTC stands in for local time): evenings peak.
HOUR_WEIGHTS: tuple[float, ...] = (
    1.2, 0.8, 0.5, 0.4, 0.4, 0.6, 1.2, 2.4, 3.6, 4.2, 4.6, 5.0,
    5.6, 5.4, 5.0, 4.9, 5.0, 5.4, 6.2, 7.2, 7.8, 7.0, 5.0, 2.6,
)


@dataclass(frozen=True)
class Category:
    """A product category: SKU prefix, share of browsing, product count and price range."""

    name: str
    prefix: str
    weight: float
    products: int
    price_low: float
    price_high: float
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("Shoes", "SHO", 20.0, 60, 55.0, 190.0, (
        "Oxford", "Derby", "Loafer", "Brogue", "Monk Strap", "Ballet Flat", "Mule", "Slip-On",
        "Boat Shoe", "Espadrille")),
    Category("Boots", "BOO", 15.0, 50, 90.0, 280.0, (
        "Chelsea Boot", "Hiking Boot", "Ankle Boot", "Chukka Boot", "Rain Boot", "Work Boot",
        "Knee-High Boot", "Snow Boot")),
    Category("Sneakers", "SNK", 22.0, 60, 50.0, 170.0, (
        "Runner", "Court Sneaker", "High-Top", "Trainer", "Retro Jogger", "Trail Runner",
        "Canvas Low", "Knit Sneaker")),
    Category("Apparel", "APP", 18.0, 60, 20.0, 240.0, (
        "Rain Jacket", "Fleece", "Hoodie", "T-Shirt", "Chinos", "Puffer Vest", "Merino Sweater",
        "Joggers", "Parka", "Flannel Shirt")),
    Category("Accessories", "ACC", 10.0, 40, 8.0, 75.0, (
        "Wool Socks 3-Pack", "Leather Belt", "Beanie", "Shoe Care Kit", "Insoles", "Gloves",
        "Scarf", "Waxed Laces", "Cap")),
    Category("Bags", "BAG", 7.0, 25, 30.0, 260.0, (
        "Backpack", "Tote", "Duffel", "Crossbody Bag", "Laptop Sleeve", "Weekender")),
    Category("Outdoor", "OUT", 8.0, 25, 15.0, 420.0, (
        "Trekking Poles", "Two-Person Tent", "Sleeping Bag", "Headlamp", "Water Bottle",
        "Camp Chair", "Gaiters", "Daypack")),
)
# Multipliers of the category weights for a customer's favourite category, by age:
# under 30, 30-44, 45 and over, unknown (order of CATEGORIES).
AGE_CATEGORY_TILT: tuple[tuple[float, ...], ...] = (
    (0.6, 0.8, 1.9, 1.2, 1.1, 1.0, 0.9),
    (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1),
    (2.0, 1.3, 0.5, 0.9, 0.9, 0.9, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
)
PRODUCT_BRANDS: tuple[str, ...] = (
    "Cobble & Pine", "Northpeak", "Strider", "Alder & Co", "Harbor Lane", "Fjellvik",
    "Ridgeline", "Marlowe", "Kestrel", "Lumen",
)
PRODUCT_STYLES: tuple[str, ...] = (
    "Classic", "Everyday", "Trail", "Urban", "Heritage", "Pro", "Lite", "All-Weather",
    "Waterproof", "Original",
)
PRODUCT_COLORS: tuple[str, ...] = (
    "Black", "Tan", "Navy", "Olive", "Grey", "White", "Burgundy", "Sand", "Forest", "Rust",
)


@dataclass(frozen=True)
class Products:
    """The product catalog as parallel lists, index = product number."""

    sku: list[str]
    name: list[str]
    category: list[str]
    brand: list[str]
    price: np.ndarray
    category_index: np.ndarray
    popularity: np.ndarray


def build_products(rng: np.random.Generator) -> Products:
    """A few hundred products with unique names, category price ranges and Zipf popularity."""
    sku: list[str] = []
    name: list[str] = []
    category: list[str] = []
    brand: list[str] = []
    prices: list[float] = []
    cat_index: list[int] = []
    popularity: list[float] = []
    for ci, cat in enumerate(CATEGORIES):
        combos = len(PRODUCT_STYLES) * len(cat.nouns) * len(PRODUCT_COLORS)
        picks = rng.choice(combos, size=cat.products, replace=False)
        brands = rng.integers(0, len(PRODUCT_BRANDS), size=cat.products)
        # Log-uniform prices within the range, ending in .99 or .00 like shop prices.
        raw = np.exp(rng.uniform(np.log(cat.price_low), np.log(cat.price_high), cat.products))
        cents = np.where(rng.random(cat.products) < 0.7, -0.01, 0.0)
        ranks = rng.permutation(cat.products) + 1
        for j in range(cat.products):
            combo = int(picks[j])
            style = PRODUCT_STYLES[combo // (len(cat.nouns) * len(PRODUCT_COLORS))]
            noun = cat.nouns[(combo // len(PRODUCT_COLORS)) % len(cat.nouns)]
            color = PRODUCT_COLORS[combo % len(PRODUCT_COLORS)]
            sku.append(f"{cat.prefix}-{1001 + j}")
            brand.append(PRODUCT_BRANDS[int(brands[j])])
            name.append(f"{brand[-1]} {style} {noun}, {color}")
            category.append(cat.name)
            prices.append(round(max(float(np.round(raw[j])) + cents[j], 4.99), 2))
            cat_index.append(ci)
            popularity.append(1.0 / float(ranks[j]) ** 0.9)
    return Products(sku, name, category, brand, np.array(prices), np.array(cat_index),
                    np.array(popularity))


@dataclass(frozen=True)
class Campaign:
    name: str
    day: dt.date
    weight: float  # relative reach: promotions go to more people than a newsletter


# Seasonal promotions: (slug, month, day-or-None, weight). Black Friday and Cyber Monday
# are computed from the calendar.
PROMOTIONS: tuple[tuple[str, int, int, float], ...] = (
    ("new-year-clearance", 1, 2, 2.5),
    ("valentines-gift-guide", 2, 5, 1.5),
    ("spring-sale", 3, 14, 2.5),
    ("trail-season", 4, 10, 1.5),
    ("summer-sale", 6, 20, 2.5),
    ("back-to-school", 8, 12, 1.8),
    ("boots-season", 10, 1, 2.0),
    ("holiday-gift-guide", 12, 3, 2.2),
    ("last-minute-gifts", 12, 18, 2.0),
)


def marketing_calendar(first: dt.date, last: dt.date) -> list[Campaign]:
    """Every campaign sent between two dates: a Thursday newsletter plus seasonal promotions."""
    campaigns: list[Campaign] = []
    day = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    while day <= last:
        campaigns.append(Campaign(f"newsletter-{day.isoformat()}", day, 1.0))
        day += dt.timedelta(days=7)
    month = dt.date(first.year, first.month, 1)
    while month <= last:
        campaigns.append(Campaign(f"new-arrivals-{month:%Y-%m}", month, 1.3))
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    for year in range(first.year, last.year + 1):
        for slug, mon, mday, weight in PROMOTIONS:
            campaigns.append(Campaign(f"{slug}-{year}", dt.date(year, mon, mday), weight))
        thanksgiving = dt.date(year, 11, 1) + dt.timedelta(days=(3 - dt.date(year, 11, 1).weekday()) % 7 + 21)
        campaigns.append(Campaign(f"black-friday-{year}", thanksgiving + dt.timedelta(days=1), 3.0))
        campaigns.append(Campaign(f"cyber-monday-{year}", thanksgiving + dt.timedelta(days=4), 2.5))
    kept = [c for c in campaigns if first <= c.day <= last]
    return sorted(kept, key=lambda c: (c.day, c.name))


@dataclass(frozen=True)
class NamePool:
    """Names for one country: female and male first names, and last names, with repeats."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def name_pools(seed: int, size: int = 240) -> tuple[NamePool, ...]:
    """Draw names once per country from Faker (seeded), so names follow each locale's frequencies.

    Only Faker's person provider is loaded (loading them all takes a second).
    """
    from faker import Faker

    pools: list[NamePool] = []
    for index, country in enumerate(COUNTRIES):
        fake = Faker(country.locale, providers=["faker.providers.person"])
        fake.seed_instance(seed * 1009 + index)
        pools.append(NamePool(
            female=tuple(fake.first_name_female() for _ in range(size)),
            male=tuple(fake.first_name_male() for _ in range(size)),
            last=tuple(fake.last_name() for _ in range(size + size // 2)),
        ))
    return tuple(pools)


_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_TRANSLIT = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d",
                           "Ł": "L", "Ø": "O", "Æ": "AE"})


def email_slug(name: str) -> str:
    """A name as it would appear in an email address: ASCII, lowercase, letters and digits."""
    folded = unicodedata.normalize("NFKD", name.translate(_TRANSLIT))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub("", ascii_text) or "customer"


def normalised(weights: tuple[float, ...] | list[float] | np.ndarray) -> np.ndarray:
    """Weights as probabilities summing to one."""
    array = np.asarray(weights, dtype=float)
    return array / array.sum()
