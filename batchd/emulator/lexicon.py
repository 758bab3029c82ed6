"""Word lists the local engine reasons with: stop words, category keywords, names.

Category keywords are stems (``financ`` matches finance, financial, financing); a
multi-word entry is matched as a phrase. Categories not listed here are scored by the
words of their own name.
"""

from __future__ import annotations

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just let me more most my myself
no nor not now of off on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours yourself
yourselves shall may might must upon via per within without regarding dear hello hi thanks thank please
regards best sincerely kind us one two three new also within re fw fwd subject document text email
""".split())

CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    "technology": ("software", "hardware", "comput", "server", "cloud", "algorithm", "api", "database",
                   "network", "digital", "code", "program", "develop", "engineer", "tech", "app", "platform",
                   "data", "internet", "cyber", "machine learning", "artificial intelligence", "ai", "devops",
                   "deploy", "kubernetes", "python", "startup", "saas", "it "),
    "finance": ("financ", "invoice", "payment", "bank", "loan", "credit", "debit", "account", "budget",
                "revenue", "profit", "tax", "invest", "stock", "fund", "dividend", "interest rate", "audit",
                "expense", "capital", "fiscal", "quarter", "earnings", "usd", "eur", "$", "€", "price",
                "billing", "balance", "mortgage", "insurance", "asset"),
    "healthcare": ("health", "medic", "patient", "doctor", "physician", "nurse", "hospital", "clinic",
                   "diagnos", "treatment", "therap", "symptom", "disease", "prescri", "pharma", "drug",
                   "vaccin", "surgery", "surgical", "care", "dental", "mental health", "cardio", "insulin",
                   "blood", "appointment"),
    "legal": ("legal", "law", "contract", "agreement", "clause", "court", "attorney", "lawyer", "counsel",
              "litigat", "plaintiff", "defendant", "statut", "regulat", "complian", "liabilit", "indemn",
              "jurisdiction", "breach", "settlement", "nda", "confidential", "terms and conditions",
              "intellectual property", "patent", "trademark", "copyright", "warrant", "arbitrat", "hereby",
              "whereas", "party", "parties", "govern"),
    "education": ("school", "student", "teacher", "universit", "course", "lecture", "exam", "curricul",
                  "degree", "educat", "learn", "classroom", "tuition", "grade", "campus", "semester"),
    "sports": ("sport", "game", "match", "team", "player", "coach", "score", "tournament", "league",
               "championship", "season", "goal", "football", "soccer", "basketball", "tennis"),
    "politics": ("politic", "government", "election", "vote", "parliament", "senat", "congress",
                 "minister", "president", "policy", "campaign", "legislat", "party"),
    "science": ("scien", "research", "experiment", "hypothes", "laborator", "physic", "chemi", "biolog",
                "study", "journal", "theory", "molecul", "genom"),
    "entertainment": ("movie", "film", "music", "concert", "album", "celebrit", "show", "television",
                      "series", "actor", "actress", "festival", "entertain", "streaming"),
    "marketing": ("marketing", "campaign", "brand", "advertis", "seo", "social media", "audience", "promot",
                  "lead", "conversion", "newsletter"),
    "sales": ("sales", "deal", "quote", "proposal", "customer", "prospect", "purchase", "order", "discount",
              "pricing", "contract renewal"),
    "hr": ("hiring", "recruit", "candidate", "interview", "employee", "onboarding", "salary", "payroll",
           "benefit", "vacation", "leave", "resume", "human resources"),
    "travel": ("travel", "flight", "hotel", "booking", "trip", "itinerar", "airport", "passport", "visa",
               "reservation"),
    "real_estate": ("real estate", "property", "lease", "tenant", "landlord", "rent", "apartment", "house",
                    "mortgage", "square feet", "listing"),
    "support": ("support", "help", "issue", "problem", "bug", "error", "ticket", "broken", "crash",
                "not working", "fix", "troubleshoot"),
    "complaint": ("complain", "disappoint", "unacceptable", "refund", "angry", "poor service", "terrible",
                  "worst", "dissatisf"),
    "spam": ("winner", "lottery", "free money", "click here", "unsubscribe", "act now", "limited offer",
             "prize", "viagra", "crypto giveaway"),
    "positive": ("great", "excellent", "happy", "love", "good", "wonderful", "pleased", "thank", "fantastic",
                 "amazing", "satisf", "delight", "appreciat"),
    "negative": ("bad", "poor", "terrible", "angry", "hate", "disappoint", "awful", "unhappy", "worst",
                 "problem", "fail", "complain", "unacceptable"),
    "urgent": ("urgent", "asap", "immediately", "critical", "emergency", "deadline", "today", "right away"),
    "high": ("urgent", "asap", "immediately", "critical", "emergency", "important", "deadline"),
    "low": ("whenever", "no rush", "low priority", "fyi", "someday", "optional"),
    "invoice": ("invoice", "amount due", "bill", "payment terms", "remit"),
    "receipt": ("receipt", "paid", "transaction", "thank you for your purchase"),
    "resume": ("resume", "curriculum vitae", "experience", "skills", "education", "references"),
}

#: Enum values that mean "none of the above": the fallback when nothing else scores.
FALLBACKS = ("general", "other", "misc", "miscellaneous", "unknown", "none", "neutral", "unclassified",
             "uncategorized", "n/a", "na", "medium", "normal")

FIRST_NAMES = frozenset("""
aaron adam adrian ahmed aisha alan albert alex alexander alexandra alice alicia alison amanda amber amelia
amir amy ana andrea andrew angela anna anne anthony antonio arjun arthur ashley barbara ben benjamin beth
betty bill bob brandon brenda brian bruce carl carla carlos carol caroline catherine charles charlie
charlotte chen chris christina christine christopher claire claudia daniel david deborah dennis diana diane
diego donald donna dorothy douglas dylan edward elena elizabeth ella emily emma eric erik ethan eva evelyn
fatima felix fernando fiona frank gabriel gary george grace greg gregory hannah harold harry heather helen
henry hiroshi hugo ian irene isaac isabel isabella jack jacob james jamie jan jane janet jason jean jeff
jeffrey jennifer jeremy jessica jim joan joe john jonathan jordan jose joseph joshua joyce juan judith julia
julie justin karen kate katherine kathleen kathryn keith kelly kenneth kevin kim kimberly laura lauren lee
leo linda lisa liam lily lucas lucy luis luke maria marie mark martha martin mary matthew maya megan
melissa mia michael michelle miguel mike mohammed muhammad nancy natalie nathan nicholas nicole noah olivia
omar oscar pablo pamela patricia patrick paul paula peter philip priya rachel rahul raj ralph raymond
rebecca richard rita robert roger ronald rose ruth ryan sam samantha samuel sandra sara sarah scott sean
sebastian sharon shirley simon sofia sophia sophie stephanie stephen steve steven susan teresa terry thomas
tim timothy tom tony tyler victoria vincent walter wei william yuki zoe
""".split())

NAME_TITLES = ("Dr", "Mr", "Mrs", "Ms", "Miss", "Prof", "Professor", "Sir", "Dame")

NOT_NAME_WORDS = frozenset("""
the this that these those dear hello hi thanks thank best kind warm regards sincerely yours please note
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december street st avenue ave road rd lane suite floor building city county
inc llc ltd corp co company group bank university hospital clinic institute foundation limited gmbh plc
invoice contact phone email mobile tel fax address subject re fw fwd meeting report summary total amount
north south east west new san los las united states kingdom america europe asia africa department office
team project account customer client support sales service services manager director officer chief head
accounts receivable payable billing finance operations legal marketing procurement purchasing reception
admin administration human resources engineering accounting payroll helpdesk desk front
""".split())

ORG_SUFFIXES = ("Inc", "Inc.", "LLC", "L.L.C.", "Ltd", "Ltd.", "Limited", "GmbH", "AG", "SA", "S.A.",
                "PLC", "plc", "LLP", "LP", "Corp", "Corp.", "Corporation", "Company", "Co.", "Group", "Holdings",
                "Partners", "Associates", "Bank", "University", "Hospital", "Clinic", "Institute", "Foundation",
                "Labs", "Laboratories", "Technologies", "Systems", "Solutions", "Consulting", "Capital",
                "Ventures", "Insurance", "Pharmaceuticals", "Industries", "Enterprises", "Agency", "Studio",
                "Studios", "Media", "Networks", "Software", "Analytics", "Logistics", "Law", "Legal")

ROLE_WORDS = ("CEO", "CTO", "CFO", "COO", "CIO", "CMO", "CISO", "CPO", "VP", "SVP", "EVP", "Vice President",
              "President", "Director", "Manager", "Engineer", "Developer", "Designer", "Analyst",
              "Consultant", "Attorney", "Lawyer", "Counsel", "Paralegal", "Partner", "Founder", "Co-founder",
              "Owner", "Chairman", "Chairwoman", "Chair", "Secretary", "Treasurer", "Accountant", "Nurse",
              "Physician", "Doctor", "Surgeon", "Professor", "Teacher", "Recruiter", "Coordinator",
              "Administrator", "Assistant", "Specialist", "Officer", "Representative", "Agent",
              "Account Executive", "Architect", "Scientist", "Researcher", "Editor", "Producer", "Advisor",
              "Adviser", "Controller", "Auditor", "Broker", "Pharmacist", "Therapist", "Principal", "Head")

FREE_MAIL = frozenset({"gmail", "googlemail", "yahoo", "outlook", "hotmail", "live", "icloud", "me", "aol",
                       "proton", "protonmail", "gmx", "mail", "yandex", "zoho", "fastmail", "web", "t-online"})
