"""The seed's scenario: four sentences and the question only the first one answers."""

SEED = {
    "poste.txt": "Le bureau de poste ouvre à 9h.",
    "coiffeur.txt": "Le coiffeur de la place ouvre à 9h30.",
    "piscine.txt": "Il faut un bonnet de bain pour accéder à la piscine municipale.",
    "raviolis.txt": "Hier soir, j'ai mangé des raviolis.",
}
QUERY = "À quelle heure ouvre le bureau de poste ?"


def write_seed(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SEED.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return folder
