"""Paraphrased instruction templates per task. Template 0 of each task is the fixed one used for
validation and test rows; training rows draw any template with a seeded RNG."""

SEQREC = [
    "The user has interacted with these items in order: {history}. Which item will the user interact with next?",
    "Here is a user's purchase history: {history}. Predict the next item.",
    "Given the items {history}, bought one after another by a user, recommend the item they will want next.",
    "A user's recent items are {history}. What should be recommended next?",
    "Based on this sequence of items: {history}, what is the most likely next item?",
    "Interaction history, oldest first: {history}. Which item comes next?",
]
ITEM2INDEX = {
    "title": [
        'Which item has the title "{title}"?',
        'What is the index of the item called "{title}"?',
        'Find the item whose title is "{title}".',
    ],
    "description": [
        "An item is described as follows: {description} Which item is it?",
        "Which item matches this description? {description}",
        "Here is an item description: {description} Give the item's index.",
    ],
    "title_description": [
        'Title: "{title}". Description: {description} Which item is this?',
        'An item called "{title}" is described as: {description} What is its index?',
        'Give the index of the item "{title}", described as: {description}',
    ],
}
INDEX2ITEM = {
    "title": [
        "What is the title of item {codes}?",
        "Tell me the name of item {codes}.",
        "Item {codes} is called what?",
    ],
    "description": [
        "Describe item {codes}.",
        "What is item {codes} like? Give its description.",
        "Write the description of item {codes}.",
    ],
    "title_description": [
        "Give the title and description of item {codes}.",
        "What are the name and the description of item {codes}?",
        "Item {codes}: state its title, then describe it.",
    ],
}
FUSION = {
    "codes_to_title": [
        "A user interacted with {history} in this order. What is the title of the item they will interact with next?",
        "Given the history {history}, name the next item the user will choose.",
        "Here are a user's items: {history}. Predict the title of the next one.",
    ],
    "codes_to_description": [
        "A user interacted with {history} in this order. Describe the item they will interact with next.",
        "Given the history {history}, describe the next item the user will choose.",
        "Here are a user's items: {history}. What will the next one be like?",
    ],
    "titles_to_codes": [
        "A user interacted with these items in order: {titles}. Which item will they interact with next?",
        "The user bought {titles}. Recommend the next item.",
        "Given the items {titles}, one after another, what is the next item?",
    ],
}
SEARCH = [
    'A user searches for "{query}". Which item matches best?',
    "Find an item for this query: {query}",
    'Which item should be shown to someone looking for "{query}"?',
    "Search query: {query}. Recommend one item.",
]
PREFERENCE = [
    "A user interacted with {history} in this order. Describe the user's preferences.",
    "Here are the items a user chose: {history}. What does this user like?",
    "Summarise the taste of a user whose history is {history}.",
]


def eval_prompts() -> dict[str, str]:
    """The fixed templates of validation and test rows, which a trained model keeps with its weights."""
    return {"seqrec": SEQREC[0]}

# RecExplainer's alignment tasks (tasks/explainer.py): {user} and {item} are rendered per variant; every
# prompt ends with "Answer:" and every completion starts with a space, so a title tokenizes the same after
# any prompt.
ALIGN = {
    "next": [
        "{user}. Which item will the recommender suggest next? Answer:",
        "The recommender has seen {user}. What is its top recommendation? Answer:",
        "Given {user}, name the item the recommender ranks first. Answer:",
    ],
    "rank": [
        "Rank these items as the recommender would for {user}, best first, separated by |: {candidates}. Answer:",
        "Order {candidates} the way the recommender scores them for {user} (best first, | between). Answer:",
    ],
    "classify": [
        "Would the recommender suggest {item} to {user}? Answer yes or no. Answer:",
        "Is {item} among the recommender's likely picks for {user}? Yes or no? Answer:",
        "Does the recommender think {user} would like {item}? Answer yes or no. Answer:",
    ],
    "history": [
        "Which items has {user} interacted with? List them, separated by |. Answer:",
        "Recall the history of {user}, items separated by |. Answer:",
    ],
    "item:title": ["What is the title of {item}? Answer:", "Name {item}. Answer:"],
    "item:categories": ["Which categories does {item} belong to? Answer:", "What kind of item is {item}? Answer:"],
    "item:brand": ["Which brand makes {item}? Answer:", "Who is the brand of {item}? Answer:"],
    "item:from_categories": ["Name an item in the categories {categories}. Answer:",
                             "Give the title of an item that belongs to {categories}. Answer:"],
}
EXPLAIN = ("{user}. The recommender {decision} {item}. Explain, from the user's history, why it would "
           "{verdict} recommend this item. Answer:")
