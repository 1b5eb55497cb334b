"""Function words left out of keyword queries (English, French, German, Spanish).

They match nearly every passage: BM25 gives them little weight anyway, but on
PostgreSQL every match is ranked, so a query full of them is slow for nothing.
"""

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves
    au aux avec ce ces cette dans de des du elle en et eux il ils je la le les leur lui ma mais me même mes moi mon ne
    nos notre nous on ou où par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre vous y est
    sont été être avoir ai as avons avez ont
    der die das den dem des ein eine einer eines einem einen und oder aber ist sind war waren mit von zu im in am auf
    für nicht sich es er sie wir ihr ich du
    el la los las un una unos unas y o pero es son fue con por para del al en que se lo su sus
    """.split()
)
