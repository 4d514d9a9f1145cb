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
