document.getElementById("title").dataset.built = "vite";
